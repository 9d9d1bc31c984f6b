"""Runs cases against a subject, one at a time, and collects their results. Suite-neutral:
the host suite (and later the worker suite) supplies contexts and applicability."""

from __future__ import annotations

import asyncio
import contextlib
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
from conformance._steps import StepAbort, StepRecorder, requirement_outcomes
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


@dataclass(slots=True)
class _Outcome:
    status: Status
    message: str = ""
    skip_reason: str = ""
    completed: bool = False  # the body ran to its end (whatever its steps decided)


def _step_failures(steps: StepRecorder) -> str:
    return "\n".join(f"[{', '.join(s.requirements)}] {s.name}: {s.message}" for s in steps.failures)


async def _run_one(
    case: Case[ContextT],
    context: ContextT,
    options: RunOptions,
) -> _Outcome:
    """Run one case body and its after-checks; return its outcome. Failed steps fail the case
    without ending it; an error outside a step ends it."""
    limit = options.case_timeout_s * options.scale
    steps = _steps_of(context)
    completed = False
    try:
        await asyncio.wait_for(case.body(context), limit)
        completed = True
        context.verify()
    except StepAbort:
        # Its step recorded the failure; what the subject sent until then is still checked.
        context.verify()
    except CaseFailure as exc:
        return _Outcome(Status.FAIL, _join(_step_failures(steps), str(exc)), completed=completed)
    except CaseSkip as exc:
        return _Outcome(Status.SKIP, exc.detail, exc.reason.value)
    except TimeoutError:
        message = f"the case did not finish within {limit:.0f} s"
        return _Outcome(Status.FAIL, _join(_step_failures(steps), message))
    except Exception as exc:  # any error of the subject or of the case is the case's failure
        where = traceback.extract_tb(exc.__traceback__)[-1]
        message = f"error: {type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
        return _Outcome(Status.FAIL, _join(_step_failures(steps), message))
    if steps.failures:
        return _Outcome(Status.FAIL, _step_failures(steps), completed=completed)
    return _Outcome(Status.PASS, completed=completed)


def _steps_of(context: object) -> StepRecorder:
    """Return the context's step recorder (a context written before steps existed has none:
    give it one, so its cases are decided by case)."""
    steps = getattr(context, "steps", None)
    if not isinstance(steps, StepRecorder):
        steps = StepRecorder()
        with contextlib.suppress(AttributeError):  # a slotted context: its steps stay empty
            context.steps = steps  # type: ignore[attr-defined]
    return steps


def _join(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


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
        record.outcomes = requirement_outcomes(
            case.requirements,
            (),
            case_passed=False,
            completed=False,
            case_message=skip.detail,
            skipped=True,
        )
        return record
    context = make_context()
    started = time.monotonic()
    outcome = await _run_one(case, context, options)
    status, message = outcome.status, outcome.message
    try:
        await asyncio.wait_for(context.close(), 5.0 * options.scale)
    except Exception as exc:  # closing must not mask the verdict
        context.trace.note("harness", f"cleanup failed: {type(exc).__name__}: {exc}")
    crash = await subject.after_case(status is Status.FAIL)
    if crash is not None:
        status, message = Status.FAIL, crash + (f"\n(case: {message})" if message else "")
    record.status = status
    record.message = message
    record.skip_reason = outcome.skip_reason
    record.duration_s = time.monotonic() - started
    record.steps = list(_steps_of(context).results)
    record.outcomes = requirement_outcomes(
        case.requirements,
        record.steps,
        case_passed=status is Status.PASS,
        completed=outcome.completed and crash is None,
        case_message=message,
        skipped=status is Status.SKIP,
    )
    if status is Status.FAIL:
        record.trace = context.trace.lines()
    return record
