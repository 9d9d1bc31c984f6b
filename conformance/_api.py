"""A synchronous entry point for running the host suite from Python code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path

from conformance._cases import Level
from conformance._expected import ExpectedFailure, load_expected_failures
from conformance._host_suite import run_host_suite_async, select_host_cases
from conformance._results import SuiteResult
from conformance._subject import AttachedSubject, SpawnedSubject, Subject

__all__ = ["run_host_suite"]


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
) -> SuiteResult:
    """Run the host suite against the host at ``address``, or one started with ``command``
    (``{port}``/``{address}`` substituted), and return the result. ``cases`` are globs. Must
    not be called from a running event loop (use ``run_host_suite_async`` there)."""
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
        )
    )
