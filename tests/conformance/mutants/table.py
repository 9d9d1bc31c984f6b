"""Writes conformance/MUTATION_MATRIX.md: for each MUST a conformance case cites, the mutants
that break it and the cases expected to catch them, plus the MUSTs no case checks.

``python -m tests.conformance.mutants.table`` rewrites the file; ``--check`` exits non-zero
when the committed file differs from what would be written. The table is built from the
mutant catalogue, the cases and the spec alone; the matrix test checks, by running it, that
every mutant is caught where the table says."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance._cases import Case, Registry
from conformance._coverage_gaps import NOT_COVERED
from conformance._spec import SpecIndex, load_spec_index
from conformance.host_cases import HOST_CASES
from conformance.worker_cases import WORKER_CASES
from tests.cluster._cluster_mutants import CLUSTER_MUTANTS, ClusterMutant
from tests.conformance.mutants._model import Mutant
from tests.conformance.mutants.catalogue import all_mutants
from tests.conformance.mutants.expectations import (
    KNOWN_ESCAPES,
    LEGACY_NOT_CAUGHT,
    NO_MUTANT_YET,
)

__all__ = [
    "CAUGHT_STEPS",
    "Counts",
    "cited_musts",
    "counts",
    "legacy_cases",
    "recorded_steps",
    "render",
]

TABLE = Path(__file__).resolve().parents[3] / "conformance" / "MUTATION_MATRIX.md"
# Written by ``run --record``: per mutant key, the ``case#step`` entries that caught it.
CAUGHT_STEPS = Path(__file__).resolve().parent / "caught_steps.json"
REGISTRIES: dict[str, Registry[object]] = {
    "host": HOST_CASES,  # type: ignore[dict-item]
    "worker": WORKER_CASES,  # type: ignore[dict-item]
}


def cited_musts(side: str, spec: SpecIndex) -> dict[str, list[Case[object]]]:
    """Return, in spec order, each MUST the side's cases cite with the cases citing it."""
    cases = REGISTRIES[side].all()
    cited: dict[str, list[Case[object]]] = {}
    for req in spec.requirements:
        if req.level != "MUST":
            continue
        citing = [c for c in cases if req.id in c.requirements]
        if citing:
            cited[req.id] = citing
    return cited


@dataclass(frozen=True, slots=True)
class Counts:
    """The numbers the table opens with."""

    cited: int  # distinct requirements any case cites
    musts: int  # (side, MUST) pairs a case cites
    mutants: int
    caught: int  # mutants expected to be caught (all but known escapes)
    covered: int  # cited (side, MUST) pairs with at least one caught mutant
    uncovered: int  # MUSTs of a subject no case cites


def counts(spec: SpecIndex, mutants: Sequence[Mutant]) -> Counts:
    """Return the matrix's counts."""
    cited_ids = {r for reg in REGISTRIES.values() for c in reg.all() for r in c.requirements}
    pairs = [(side, req) for side in REGISTRIES for req in cited_musts(side, spec)]
    caught = [m for m in mutants if m.key not in KNOWN_ESCAPES]
    covered = {(m.side, m.requirement) for m in caught}
    covered |= {("host", m.requirement) for m in CLUSTER_MUTANTS}
    return Counts(
        cited=len(cited_ids),
        musts=len(pairs),
        mutants=len(mutants) + len(CLUSTER_MUTANTS),
        caught=len(caught) + len(CLUSTER_MUTANTS),
        covered=len([p for p in pairs if p in covered]),
        uncovered=sum(len(v) for v in NOT_COVERED.values()),
    )


def legacy_cases(mutant: Mutant) -> tuple[str, ...]:
    """Return the cases of a host mutant that also apply in legacy mode (not v1-only)."""
    if mutant.side != "host":
        return ()
    applicable = []
    for case_id in mutant.catches:
        case = HOST_CASES.get(case_id)
        if case is not None and not case.v1_only:
            applicable.append(case_id)
    return tuple(applicable)


def recorded_steps() -> dict[str, list[str]]:
    """Return the steps recorded as catching each mutant (empty when none were recorded)."""
    if not CAUGHT_STEPS.exists():
        return {}
    data = json.loads(CAUGHT_STEPS.read_text())
    return {str(k): [str(c) for c in v] for k, v in data.items()}


def _caught_cell(mutant: Mutant, steps: dict[str, list[str]]) -> str:
    """Return each expected case, with the steps that caught the mutant when recorded."""
    parts = []
    for case_id in mutant.catches:
        named = [
            c.split("#", 1)[1] for c in steps.get(mutant.key, []) if c.startswith(case_id + "#")
        ]
        parts.append(f"`{case_id}`" + "".join(f" (step: {s})" for s in named))
    return ", ".join(parts)


def _legacy(mutant: Mutant) -> str:
    if mutant.side != "host":
        return ""
    if mutant.name in LEGACY_NOT_CAUGHT:
        return f"not caught: {LEGACY_NOT_CAUGHT[mutant.name]}"
    if not legacy_cases(mutant):
        return "n/a (v1-only cases)"
    return "caught"


def _cluster_row(m: ClusterMutant) -> str:
    """Return the host table's row for a broken cluster (run by tests/cluster)."""
    cases = ", ".join(f"`{case_id}`" for case_id in m.catches)
    fault = ", one of which the suite kills and starts again" if m.node_fault else ""
    caught = (
        f"{cases} (a {m.nodes}-node cluster of such nodes{fault}, "
        "tests/cluster/test_cluster_mutants.py)"
    )
    legacy = "not run: the cluster mutants run the v1 suite"
    return f"| {m.requirement} | `{m.name}` | {_cell(m.summary)} | {caught} | {legacy} |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _side_table(side: str, spec: SpecIndex, mutants: Sequence[Mutant]) -> list[str]:
    legacy = side == "host"
    header = "| Requirement | Mutant | What it breaks | Caught by |"
    rule = "|---|---|---|---|"
    if legacy:
        header += " Legacy run |"
        rule += "---|"
    lines = [header, rule]
    steps = recorded_steps()
    pending = NO_MUTANT_YET.get(side, {})
    for req_id, _ in cited_musts(side, spec).items():
        if req_id in pending:
            row = f"| {req_id} | none | | **no mutant yet**: {_cell(pending[req_id])} |"
            lines.append(row + (" |" if legacy else ""))
        for m in [m for m in mutants if m.side == side and m.requirement == req_id]:
            caught = _caught_cell(m, steps)
            if m.spares:
                caught += f" (its steps for {', '.join(m.spares)} must still pass)"
            if m.key in KNOWN_ESCAPES:
                caught = f"**not caught yet**: {KNOWN_ESCAPES[m.key]}"
            row = f"| {req_id} | `{m.name}` | {_cell(m.summary)} | {_cell(caught)} |"
            if legacy:
                row += f" {_cell(_legacy(m))} |"
            lines.append(row)
        if side == "host":
            lines += [_cluster_row(m) for m in CLUSTER_MUTANTS if m.requirement == req_id]
    return lines


def render(spec: SpecIndex | None = None, mutants: Sequence[Mutant] | None = None) -> str:
    """Return the text of MUTATION_MATRIX.md."""
    spec = spec if spec is not None else load_spec_index()
    mutants = list(mutants if mutants is not None else all_mutants())
    n = counts(spec, mutants)
    lines = [
        "# Mutation matrix",
        "",
        "<!-- Generated by `python -m tests.conformance.mutants.table`; do not edit. -->",
        "",
        "Each mutant is the reference host or the reference worker with one MUST broken by a",
        "test-side patch (tests/conformance/mutants/; the products have no such switches). The",
        "suite must fail each mutant on a case (or step) citing the broken requirement, and",
        "pass the unmodified subjects; `tests/conformance/test_mutation_matrix.py` runs the",
        "matrix (each mutant against the cases listed here) and checks this file is current.",
        "Host mutants also run in the suite's legacy mode, where v1-only cases do not apply.",
        "The cluster MUSTs' mutants are broken nodes of a 2- or 3-node cluster, which",
        "tests/cluster/test_cluster_mutants.py runs against the host suite's cluster cases.",
        "",
        f"- Requirements cited by a case: {n.cited}",
        f"- MUSTs cited, counted per suite (host, worker): {n.musts}",
        f"- Mutants: {n.mutants}; caught: {n.caught}; not caught yet: {n.mutants - n.caught}",
        f"- Cited MUSTs with a caught mutant: {n.covered} of {n.musts}; without a mutant yet: "
        f"{sum(len(v) for v in NO_MUTANT_YET.values())}",
        f"- MUSTs no case checks: {n.uncovered} (listed below with the reason)",
        "",
    ]
    for side in REGISTRIES:
        lines += [f"## {side.capitalize()} suite", ""]
        lines += _side_table(side, spec, mutants)
        lines.append("")
    lines += [
        "## MUSTs the suite cannot check",
        "",
        "| Suite | Requirement | Reason |",
        "|---|---|---|",
    ]
    for side, reasons in NOT_COVERED.items():
        for req_id, reason in sorted(reasons.items()):
            lines.append(f"| {side} | {req_id} | {_cell(reason)} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the table, or with --check compare it with the committed one."""
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.mutants.table")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TABLE.read_text() if TABLE.exists() else ""
        if current != text:
            print(f"{TABLE} is stale: run python -m tests.conformance.mutants.table")
            return 1
        return 0
    TABLE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
