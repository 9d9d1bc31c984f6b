"""The host suite: selects host cases, probes the host's capabilities and runs the cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Case, CaseSkip, Level, SkipReason
from conformance._expected import ExpectedFailure
from conformance._host_context import HostContext
from conformance._node_fault import (
    LEASE_OPTION,
    NODE_FAULT_CASES,
    NODE_FAULT_OPTION,
    NodeFault,
)
from conformance._results import CaseResult, SuiteResult
from conformance._runner import RunOptions, run_cases
from conformance._secure_host import OPTION_NAMES, command_line
from conformance._subject import Subject
from conformance._trace import Trace
from conformance._wire import all_capabilities
from conformance._worker import RawWorker
from conformance.host_cases import HOST_CASES

__all__ = ["probe_capabilities", "run_host_suite_async", "select_host_cases"]


def select_host_cases(
    globs: Iterable[str] = (),
    requirements: Iterable[str] = (),
    levels: Iterable[Level] = (),
) -> list[Case[HostContext]]:
    """Return the host cases matching the filters (see Registry.select)."""
    return HOST_CASES.select(globs=globs, requirements=requirements, levels=levels)


async def probe_capabilities(address: str, scale: float) -> frozenset[int]:
    """Open a v1 data channel announcing every capability and return those the welcome lists
    (none when no welcome arrives)."""
    worker = RawWorker(
        address,
        label="probe",
        client_id=f"conformance-probe-{uuid.uuid4()}",
        hello=pb.ChannelHello(protocol_version=1, capabilities=all_capabilities()),
        legacy_path=False,
        trace=Trace(),
        scale=scale,
    )
    try:
        await worker.open(welcome_timeout=3.0)
        if worker.welcome is None:
            return frozenset()
        return frozenset(worker.welcome.capabilities)
    finally:
        await worker.close()


async def run_host_suite_async(
    subject: Subject,
    *,
    cases: Sequence[Case[HostContext]] | None = None,
    legacy: bool = False,
    scale: float = 1.0,
    expected_failures: Sequence[ExpectedFailure] = (),
    replay_prefix: Sequence[str] = ("python", "-m", "conformance"),
    on_result: Callable[[CaseResult], None] | None = None,
    secure_commands: Mapping[int, list[str]] | None = None,
    node_fault: NodeFault | None = None,
) -> SuiteResult:
    """Run the host suite (all cases, or ``cases``) against ``subject``. ``secure_commands``
    holds, per security capability (TLS, mutual TLS, bearer token), the command of a host
    configured for it (spec 16.3): giving one claims the mechanism, and its cases start that
    host; the others are not claimed (the suite's main host serves plaintext). ``node_fault``
    kills a node of a cluster or starts it again, for the node-loss cases (spec 18.3)."""
    chosen = HOST_CASES.all() if cases is None else list(cases)
    capabilities: set[int] = set()
    secure = dict(secure_commands or {})

    async def prepare() -> None:
        if not legacy:
            capabilities.update(await probe_capabilities(subject.address, scale))

    def applicability(case: Case[HostContext]) -> CaseSkip | None:
        if legacy and case.v1_only:
            return CaseSkip(SkipReason.NOT_APPLICABLE, "needs v1 extensions; legacy run")
        if case.capability in OPTION_NAMES:
            if case.capability not in secure:
                option = OPTION_NAMES[case.capability]
                return CaseSkip(SkipReason.NOT_CLAIMED, f"no {option} given")
            return None
        if case.capability is not None and case.capability not in capabilities:
            name = pb.Capability.Name(case.capability)
            return CaseSkip(SkipReason.NOT_CLAIMED, f"the host does not announce {name}")
        return None

    def make_context() -> HostContext:
        offset = subject.output_size()
        return HostContext(
            address=subject.address,
            addresses=tuple(getattr(subject, "addresses", ())),
            legacy=legacy,
            scale=scale,
            host_capabilities=frozenset(capabilities),
            stop_subject=subject.request_stop,
            secure_commands=secure,
            subject_output=lambda: subject.output_since(offset),
            node_fault=node_fault,
        )

    replay = {
        case.id: [OPTION_NAMES[case.capability], command_line(secure[case.capability])]
        for case in chosen
        if case.capability in secure
    }
    if node_fault is not None:
        for case in chosen:
            if case.id in NODE_FAULT_CASES:
                replay[case.id] = [
                    NODE_FAULT_OPTION,
                    command_line(node_fault.argv),
                    LEASE_OPTION,
                    str(node_fault.lease_ms),
                ]
    options = RunOptions(
        legacy=legacy,
        scale=scale,
        expected_failures=expected_failures,
        replay_prefix=replay_prefix,
        replay_options=replay,
        on_result=on_result,
    )
    return await run_cases(
        "host",
        chosen,
        subject,
        known_case_ids=HOST_CASES.ids(),
        make_context=make_context,
        applicability=applicability,
        options=options,
        prepare=prepare,
    )
