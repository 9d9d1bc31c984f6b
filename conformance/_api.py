"""Synchronous entry points for running the host and worker suites from Python code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path

from conformance._cases import Level
from conformance._expected import ExpectedFailure, load_expected_failures
from conformance._host_suite import run_host_suite_async, select_host_cases
from conformance._node_fault import node_fault
from conformance._results import SuiteResult
from conformance._secure_host import secure_commands
from conformance._subject import AttachedSubject, SpawnedSubject, Subject
from conformance._worker_subject import WorkerSubject
from conformance._worker_suite import run_worker_suite_async, select_worker_cases

__all__ = ["run_host_suite", "run_worker_suite"]


def run_host_suite(
    *,
    address: str | None = None,
    command: Sequence[str] | None = None,
    cases: Iterable[str] = (),
    requirements: Iterable[str] = (),
    levels: Iterable[Level] = (),
    legacy: bool = False,
    timeout_scale: float = 1.0,
    expected_failures: Sequence[ExpectedFailure] | Path | None = None,
    tls_command: str | None = None,
    mtls_command: str | None = None,
    token_command: str | None = None,
    node_fault_command: str | None = None,
    node_lease_ms: int | None = None,
) -> SuiteResult:
    """Run the host suite against the host at ``address``, or one started with ``command``
    (``{port}``/``{address}`` substituted), and return the result. ``cases`` are globs.
    ``tls_command``, ``mtls_command`` and ``token_command`` (shell-quoted strings) claim a
    security mechanism and start the host its cases run against (spec 16.3);
    ``node_fault_command`` and ``node_lease_ms`` claim node faults of a cluster (spec 18.3, see
    ``--node-fault-command``). Must not be
    called from a running event loop (use ``run_host_suite_async`` there)."""
    if (address is None) == (command is None):
        raise ValueError("give exactly one of address or command")
    subject: Subject
    if address is not None:
        subject = AttachedSubject(address, scale=timeout_scale)
    else:
        assert command is not None
        subject = SpawnedSubject(list(command), scale=timeout_scale)
    if isinstance(expected_failures, Path):
        expected: Sequence[ExpectedFailure] = load_expected_failures(expected_failures)
    else:
        expected = expected_failures or ()
    selected = select_host_cases(cases, requirements, levels)
    return asyncio.run(
        run_host_suite_async(
            subject,
            cases=selected,
            legacy=legacy,
            scale=timeout_scale,
            expected_failures=expected,
            secure_commands=secure_commands(tls_command, mtls_command, token_command),
            node_fault=node_fault(node_fault_command, node_lease_ms),
        )
    )


def run_worker_suite(
    *,
    command: Sequence[str] | None = None,
    listen: str | None = None,
    cases: Iterable[str] = (),
    requirements: Iterable[str] = (),
    levels: Iterable[Level] = (),
    timeout_scale: float = 1.0,
    expected_failures: Sequence[ExpectedFailure] | Path | None = None,
    env: dict[str, str] | None = None,
    connect_timeout_s: float = 20.0,
    claims: Iterable[int] = (),
) -> SuiteResult:
    """Run the worker suite against a worker started with ``command`` (it gets
    AGENTWORKER_HOST_ADDRESS, plus ``env``), or one that connects to ``listen`` (attach
    mode), and return the result. ``cases`` are globs; ``claims`` are capabilities to test
    that the hello cannot show (see run_worker_suite_async). Must not be called from a running
    event loop (use ``run_worker_suite_async`` there)."""
    if (listen is None) == (command is None):
        raise ValueError("give exactly one of command or listen")
    subject = WorkerSubject(
        list(command) if command is not None else None,
        listen=listen or "127.0.0.1:0",
        scale=timeout_scale,
        env=env,
        connect_timeout_s=connect_timeout_s,
    )
    if isinstance(expected_failures, Path):
        expected: Sequence[ExpectedFailure] = load_expected_failures(expected_failures)
    else:
        expected = expected_failures or ()
    selected = select_worker_cases(cases, requirements, levels)
    return asyncio.run(
        run_worker_suite_async(
            subject,
            cases=selected,
            scale=timeout_scale,
            expected_failures=expected,
            claims=claims,
        )
    )
