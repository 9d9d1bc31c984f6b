"""The worker suite: selects worker cases, serves as the worker's host and runs the cases."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Case, CaseSkip, Level, SkipReason
from conformance._expected import ExpectedFailure
from conformance._payloads import enum_name
from conformance._results import CaseResult, SuiteResult
from conformance._runner import RunOptions, run_cases
from conformance._worker_context import WorkerContext
from conformance._worker_subject import WorkerSubject
from conformance.worker_cases import WORKER_CASES

__all__ = ["manifest", "run_worker_suite_async", "select_worker_cases"]


def select_worker_cases(
    globs: Iterable[str] = (),
    requirements: Iterable[str] = (),
    levels: Iterable[Level] = (),
) -> list[Case[WorkerContext]]:
    """Return the worker cases matching the filters (see Registry.select)."""
    return WORKER_CASES.select(globs=globs, requirements=requirements, levels=levels)


async def run_worker_suite_async(
    subject: WorkerSubject,
    *,
    cases: Sequence[Case[WorkerContext]] | None = None,
    scale: float = 1.0,
    expected_failures: Sequence[ExpectedFailure] = (),
    replay_prefix: Sequence[str] = ("python", "-m", "conformance"),
    on_result: Callable[[CaseResult], None] | None = None,
    claims: Iterable[int] = (),
) -> SuiteResult:
    """Run the worker suite (all cases, or ``cases``) against ``subject``. Capabilities come
    from the worker's hello: each one it declares makes its cases mandatory. ``claims`` adds
    capabilities the hello cannot show on the harness's plain connection (TLS, mutual TLS,
    bearer token: announced only on connections that use them)."""
    extra_claims = frozenset(claims)
    chosen = WORKER_CASES.all() if cases is None else list(cases)

    def claimed() -> frozenset[int]:
        conn = subject.current_connection()
        if conn is None or conn.hello is None:
            return extra_claims
        return frozenset(conn.hello.capabilities) | extra_claims

    def applicability(case: Case[WorkerContext]) -> CaseSkip | None:
        if case.capability is not None and case.capability not in claimed():
            name = pb.Capability.Name(case.capability)
            return CaseSkip(SkipReason.NOT_CLAIMED, f"the worker does not declare {name}")
        return None

    def make_context() -> WorkerContext:
        return WorkerContext(subject=subject, scale=scale)

    options = RunOptions(
        scale=scale,
        expected_failures=expected_failures,
        replay_prefix=replay_prefix,
        on_result=on_result,
    )
    result = await run_cases(
        "worker",
        chosen,
        subject,
        known_case_ids=WORKER_CASES.ids(),
        make_context=make_context,
        applicability=applicability,
        options=options,
    )
    result.subject = f"{result.subject} [{manifest(subject)}]"
    return result


def manifest(subject: WorkerSubject) -> str:
    """Describe the first hello the worker sent: implementation name and capabilities."""
    for conn in subject.host.connections:
        if conn.control:
            continue
        if conn.hello is None:
            return "no hello: a legacy worker" if not conn.hello_present else "undecodable hello"
        caps = ", ".join(enum_name(pb.Capability, c) for c in conn.hello.capabilities) or "none"
        name = conn.hello.implementation or "unnamed"
        return f"implementation {name}; capabilities {caps}"
    return "the worker never connected"
