"""The package's public names, its independence from the reference implementations, and the
host suite's coverage of host requirements."""

from __future__ import annotations

import ast
from pathlib import Path

import conformance
from conformance import HOST_CASES, WORKER_CASES, Level, load_spec_index
from conformance._coverage_gaps import NOT_COVERED

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = [
    "HARNESS_VERSION",
    "HOST_CASES",
    "AttachedSubject",
    "Case",
    "CaseFailure",
    "CaseResult",
    "CaseSkip",
    "ExpectedFailure",
    "HostContext",
    "Level",
    "Policy",
    "RawWorker",
    "Registry",
    "Requirement",
    "SkipReason",
    "SpawnedSubject",
    "SpecIndex",
    "Status",
    "Subject",
    "SubjectError",
    "SuiteResult",
    "WORKER_CASES",
    "WorkerContext",
    "WorkerSubject",
    "apply_expected_failures",
    "load_expected_failures",
    "load_spec_index",
    "run_host_suite",
    "run_host_suite_async",
    "run_worker_suite",
    "run_worker_suite_async",
    "select_host_cases",
    "select_worker_cases",
]


def test_public_names() -> None:
    assert sorted(conformance.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(conformance, name) is not None


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_harness_never_imports_the_reference_implementations() -> None:
    # The mutants are subjects (patched reference implementations), not part of the harness.
    mutants = ROOT / "tests/conformance/mutants"
    files = [
        *(ROOT / "conformance").rglob("*.py"),
        *(p for p in (ROOT / "tests/conformance").rglob("*.py") if mutants not in p.parents),
    ]
    assert files
    for path in files:
        assert not _imports(path) & {"reference_host", "reference_worker"}, path


def test_cases_cite_known_host_requirements_with_matching_levels() -> None:
    spec = load_spec_index()
    for case in HOST_CASES.all():
        assert case.id.startswith("host/")
        assert case.requirements, case.id
        assert "Procedure:" in case.description, case.id
        assert "Asserts:" in case.description, case.id
        for req_id in case.requirements:
            req = spec.get(req_id)
            assert req is not None, f"{case.id} cites unknown {req_id}"
            assert req.subject in ("host", "peer"), f"{case.id} cites {req_id} ({req.subject})"
        levels = {spec.get(r).level for r in case.requirements}  # type: ignore[union-attr]
        if case.level is Level.QUALITY:
            assert "SHOULD" in levels, case.id
        else:
            assert "MUST" in levels, case.id
        if case.level is Level.CAPABILITY:
            assert case.capability is not None, case.id


def test_worker_cases_cite_known_worker_requirements_with_matching_levels() -> None:
    spec = load_spec_index()
    for case in WORKER_CASES.all():
        assert case.id.startswith("worker/")
        assert case.requirements, case.id
        assert "Procedure:" in case.description, case.id
        assert "Asserts:" in case.description, case.id
        for req_id in case.requirements:
            req = spec.get(req_id)
            assert req is not None, f"{case.id} cites unknown {req_id}"
            assert req.subject in ("worker", "peer"), f"{case.id} cites {req_id} ({req.subject})"
        levels = {spec.get(r).level for r in case.requirements}  # type: ignore[union-attr]
        assert "MUST" in levels, case.id
        if case.level is Level.CAPABILITY:
            assert case.capability is not None, case.id


def test_worker_musts_are_covered_or_listed() -> None:
    spec = load_spec_index()
    cited = {r for case in WORKER_CASES.all() for r in case.requirements}
    musts = {r.id for r in spec.for_subject("worker") if r.level == "MUST"}
    assert musts - cited == set(NOT_COVERED["worker"])


def test_host_musts_are_covered_or_listed() -> None:
    spec = load_spec_index()
    cited = {r for case in HOST_CASES.all() for r in case.requirements}
    musts = {r.id for r in spec.for_subject("host") if r.level == "MUST"}
    assert musts - cited == set(NOT_COVERED["host"])


def test_every_gap_has_a_reason() -> None:
    assert all(reason for gaps in NOT_COVERED.values() for reason in gaps.values())
