"""Runs cases against a subject, one at a time, and collects their results. Suite-neutral:
the host suite (and later the worker suite) supplies contexts and applicability."""

from __future__ import annotations

import asyncio
import shlex
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from conformance._cases import Case, CaseFailure, CaseSkip
from conformance._expected import ExpectedFailure, apply_expected_failure, stale_entries
from conformance._results import CaseResult, Status, SuiteResult
from conformance._spec import load_spec_index
from conformance._subject import Subject, SubjectError
from conformance._trace import Trace
from conformance._version import HARNESS_VERSION

__all__ = ["CaseContext", "RunOptions", "run_cases"]


class CaseContext(Protocol):
    """What the runner needs from a per-case context."""

    @property
    def trace(self) -> Trace:
        """Return the case's wire trace."""
        ...

    def verify(self) -> None:
        """Raise CaseFailure for a violation seen in passing (checked after the body)."""
        ...

    async def close(self) -> None:
        """Release everything the case opened."""
        ...


ContextT = TypeVar("ContextT", bound=CaseContext)


@dataclass(slots=True)
class RunOptions:
    """Settings shared by every suite."""

    legacy: bool = False
    scale: float = 1.0
    case_timeout_s: float = 60.0
    expected_failures: Sequence[ExpectedFailure] = ()
    replay_prefix: Sequence[str] = ("python", "-m", "conformance")
    # Further options the replay command of a case repeats, by case id (such as the command
    # of the host a security case starts).
    replay_options: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # Called with each case's final result as soon as it is known (progress output).
    on_result: Callable[[CaseResult], None] | None = None


def _replay(options: RunOptions, suite: str, subject: Subject, case_id: str) -> str:
    args = [*options.replay_prefix, suite]
    subject_args = subject.replay_args()
    tail: list[str] = []
    if subject_args and subject_args[0] == "--":
        tail = subject_args
    else:
        args += subject_args
    if options.legacy:
        args.append("--legacy")
    if options.scale != 1.0:
        args += ["--timeout-scale", str(options.scale)]
    args += [*options.replay_options.get(case_id, ()), "--case", case_id, *tail]
    return shlex.join(args)


async def _run_one(
    case: Case[ContextT],
    context: ContextT,
    options: RunOptions,
) -> tuple[Status, str, str]:
    """Run one case body; return its status, message and skip reason."""
    limit = options.case_timeout_s * options.scale
    try:
        await asyncio.wait_for(case.body(context), limit)
        context.verify()
    except CaseFailure as exc:
        return Status.FAIL, str(exc), ""
    except CaseSkip as exc:
        return Status.SKIP, exc.detail, exc.reason.value
    except TimeoutError:
        return Status.FAIL, f"the case did not finish within {limit:.0f} s", ""
    except Exception as exc:  # any error of the subject or of the case is the case's failure
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return (
            Status.FAIL,
            f"error: {type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})",
            "",
        )
    return Status.PASS, "", ""


async def run_cases(
    suite: str,
    cases: Sequence[Case[ContextT]],
    subject: Subject,
    *,
    known_case_ids: set[str],
    make_context: Callable[[], ContextT],
    applicability: Callable[[Case[ContextT]], CaseSkip | None],
    options: RunOptions,
    prepare: Callable[[], object] | None = None,
) -> SuiteResult:
    """Start ``subject``, run ``cases`` in order and return the suite result, with expected
    failures applied. A subject that cannot be started, or a run where no case reaches a
    verdict, yields a NO RESULT."""
    spec = load_spec_index()
    result = SuiteResult(
        suite=suite,
        subject=subject.description,
        harness_version=HARNESS_VERSION,
        spec_version=spec.version,
    )
    try:
        await subject.start()
    except SubjectError as exc:
        result.no_result = f"cannot reach the subject: {exc}"
        return result
    try:
        if prepare is not None:
            prepared = prepare()
            if asyncio.iscoroutine(prepared):
                await prepared
        for case in cases:
            record = await _run_case(suite, case, subject, make_context, applicability, options)
            apply_expected_failure(record, options.expected_failures)
            result.results.append(record)
            if options.on_result is not None:
                options.on_result(record)
    except SubjectError as exc:
        result.no_result = f"the subject could not be restarted: {exc}"
    finally:
        await subject.stop()
    result.problems.extend(stale_entries(options.expected_failures, known_case_ids))
    if not result.no_result and result.executed == 0:
        result.no_result = "no case ran"
    return result


async def _run_case(
    suite: str,
    case: Case[ContextT],
    subject: Subject,
    make_context: Callable[[], ContextT],
    applicability: Callable[[Case[ContextT]], CaseSkip | None],
    options: RunOptions,
) -> CaseResult:
    record = CaseResult(
        case_id=case.id,
        requirements=case.requirements,
        level=case.level,
        status=Status.SKIP,
        replay=_replay(options, suite, subject, case.id),
    )
    skip = applicability(case)
    if skip is not None:
        record.message = skip.detail
        record.skip_reason = skip.reason.value
        return record
    context = make_context()
    started = time.monotonic()
    status, message, skip_reason = await _run_one(case, context, options)
    try:
        await asyncio.wait_for(context.close(), 5.0 * options.scale)
    except Exception as exc:  # closing must not mask the verdict
        context.trace.note("harness", f"cleanup failed: {type(exc).__name__}: {exc}")
    crash = await subject.after_case(status is Status.FAIL)
    if crash is not None:
        status, message = Status.FAIL, crash + (f"\n(case: {message})" if message else "")
    record.status = status
    record.message = message
    record.skip_reason = skip_reason
    record.duration_s = time.monotonic() - started
    if status is Status.FAIL:
        record.trace = context.trace.lines()
    return record
