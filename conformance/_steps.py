"""Steps: the unit that decides a requirement. A case checks each requirement it cites in a
step of its own, so one violation cannot hide the verdict of an independent requirement.

Inside a case body::

    with ctx.step("AWP-SUB-006", "a repeated identical add succeeds"):
        ...                                   # a failure here is recorded; the case goes on
    with ctx.step("AWP-SUB-001", "add S1", gate=True):
        ...                                   # a failure here ends the case: later steps
                                              # depend on it and become "not reached"
    ctx.decide("AWP-SUB-004", "S1 is gone", s1 not in listed, f"listed {listed}")

``async with`` works as well as ``with``. A step may cite several requirements (a tuple)."""

from __future__ import annotations

import asyncio
import enum
import re
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from conformance._cases import CaseFailure, CaseSkip

__all__ = [
    "RequirementOutcome",
    "StepAbort",
    "StepRecorder",
    "StepResult",
    "StepsMixin",
    "Verdict",
    "requirement_outcomes",
]


_REQUIREMENT_ID = re.compile(r"AWP-[A-Z]+-\d{3}")


class Verdict(enum.Enum):
    """The verdict on one requirement (or one step). The order of the members is the order of
    precedence when verdicts are combined: fail beats pass beats not reached beats not
    applicable."""

    FAIL = "fail"
    PASS = "pass"
    NOT_REACHED = "not_reached"
    NOT_APPLICABLE = "not_applicable"

    @staticmethod
    def combine(verdicts: Iterable[Verdict]) -> Verdict:
        """Return the verdict that wins among ``verdicts`` (not applicable when empty)."""
        order = list(Verdict)
        return min(verdicts, key=order.index, default=Verdict.NOT_APPLICABLE)


class StepAbort(CaseFailure):
    """Raised out of a failed gate step: the steps after it depend on it."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step's outcome: the requirements it decides, its name, pass or fail, the failure
    text."""

    requirements: tuple[str, ...]
    name: str
    verdict: Verdict
    message: str = ""


@dataclass(frozen=True, slots=True)
class RequirementOutcome:
    """A case's verdict on one requirement, with the step that decided it (None when the case
    has no step for it and its overall status stood in: ``by_case``)."""

    requirement: str
    verdict: Verdict
    step: str | None
    message: str
    by_case: bool = False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CaseFailure):
        return str(exc)
    if isinstance(exc, (TimeoutError, asyncio.CancelledError)):
        return f"the step did not finish in time ({type(exc).__name__})"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" (at {where.filename}:{where.lineno})" if where is not None else ""
    return f"error: {type(exc).__name__}: {exc}{at}"


@dataclass(slots=True)
class _Step:
    recorder: StepRecorder
    requirements: tuple[str, ...]
    name: str
    gate: bool

    def __enter__(self) -> _Step:
        self.recorder.depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.recorder.depth -= 1
        if exc is None:
            self.recorder.record(self.requirements, self.name, Verdict.PASS)
            return False
        if isinstance(exc, (CaseSkip, StepAbort)):
            return False  # a skip is the case's; a nested gate already recorded its failure
        message = _describe(exc)
        self.recorder.record(self.requirements, self.name, Verdict.FAIL, message)
        if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
            return False  # the case is being cancelled (its time is up): let it end
        if self.gate:
            raise StepAbort(f"{self.name}: {message}") from exc
        return True  # independent: the case goes on with its next step

    async def __aenter__(self) -> _Step:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)


def _ids(requirements: str | Sequence[str]) -> tuple[str, ...]:
    return (requirements,) if isinstance(requirements, str) else tuple(requirements)


@dataclass(slots=True)
class StepRecorder:
    """Collects the steps of one case, in the order they ended."""

    results: list[StepResult] = field(default_factory=list)
    depth: int = 0  # how many explicit steps are open
    # The place (file, line) of each check recorded as a step, and the step's name.
    _checked: dict[tuple[str, int], str] = field(default_factory=dict)

    def record(
        self, requirements: tuple[str, ...], name: str, verdict: Verdict, message: str = ""
    ) -> None:
        """Record a step's outcome."""
        self.results.append(StepResult(requirements, name, verdict, message))

    def step(self, requirements: str | Sequence[str], name: str, *, gate: bool = False) -> _Step:
        """Return a context manager deciding ``requirements`` by what happens inside it: it
        passes when the block ends normally, fails when the block raises. A failed step does
        not stop the case unless ``gate`` is set (the steps after it depend on it)."""
        return _Step(self, _ids(requirements), name, gate)

    def decide(
        self,
        requirements: str | Sequence[str],
        name: str,
        condition: object,
        message: str,
        *,
        gate: bool = False,
    ) -> bool:
        """Record a one-line step: it passes when ``condition`` holds, else fails with
        ``message`` (and ends the case when ``gate`` is set). Return whether it passed."""
        ids = _ids(requirements)
        if condition:
            self.record(ids, name, Verdict.PASS)
            return True
        self.record(ids, name, Verdict.FAIL, message)
        if gate:
            raise StepAbort(f"{name}: {message}")
        return False

    def check(self, condition: object, message: str) -> None:
        """Raise CaseFailure with ``message`` unless ``condition`` holds. Outside an explicit
        step, a check whose message names requirement IDs ("... (AWP-RPC-006)") is recorded as
        a gate step deciding them, named after where it is ("check 2 in unknown_fields()"):
        older cases that check with messages get per-requirement verdicts that way."""
        ids = tuple(dict.fromkeys(_REQUIREMENT_ID.findall(message)))
        if self.depth or not ids:
            if not condition:
                raise CaseFailure(message)
            return
        caller = sys._getframe(2)  # the case body (through the context's check)
        site = (caller.f_code.co_filename, caller.f_lineno)
        if condition and site in self._checked:
            return  # a check in a loop: its first pass stands for the others
        # Named by function and order of first use, which stay put when the file is edited
        # elsewhere and are the same from run to run.
        name = self._checked.setdefault(
            site, f"check {len(self._checked) + 1} in {caller.f_code.co_name}()"
        )
        self.decide(ids, name, condition, message, gate=True)

    @property
    def failures(self) -> list[StepResult]:
        """Return the failed steps."""
        return [s for s in self.results if s.verdict is Verdict.FAIL]


def requirement_outcomes(
    cited: Sequence[str],
    steps: Sequence[StepResult],
    *,
    case_passed: bool,
    completed: bool,
    case_message: str,
    skipped: bool,
) -> list[RequirementOutcome]:
    """Return the case's verdict on each requirement it cites (then on any other requirement a
    step decided). A requirement with failed steps fails on the first; one with only passed
    steps passes on the last. A cited requirement no step decided is "decided by case": it
    takes the case's status when the case has no step at all, passes when the case's body
    ran to its end (``completed``), and is not reached when the case ended before it."""
    if skipped:
        return [
            RequirementOutcome(req, Verdict.NOT_APPLICABLE, None, case_message) for req in cited
        ]
    # A requirement the case does not cite is listed only when a step found it violated (the
    # contexts check a few requirements after every case).
    extra = [
        r for s in steps if s.verdict is Verdict.FAIL for r in s.requirements if r not in cited
    ]
    outcomes = []
    for req in [*cited, *dict.fromkeys(extra)]:
        mine = [s for s in steps if req in s.requirements]
        failed = [s for s in mine if s.verdict is Verdict.FAIL]
        if failed:
            outcomes.append(
                RequirementOutcome(req, Verdict.FAIL, failed[0].name, failed[0].message)
            )
        elif passed := [s for s in mine if s.verdict is Verdict.PASS]:
            outcomes.append(RequirementOutcome(req, Verdict.PASS, passed[-1].name, ""))
        elif mine:  # only steps that found the requirement does not apply to this subject
            outcomes.append(
                RequirementOutcome(req, Verdict.NOT_APPLICABLE, mine[-1].name, mine[-1].message)
            )
        elif not steps or completed:
            verdict = Verdict.PASS if case_passed or (steps and completed) else Verdict.FAIL
            message = "" if verdict is Verdict.PASS else case_message
            outcomes.append(RequirementOutcome(req, verdict, None, message, by_case=True))
        else:
            outcomes.append(
                RequirementOutcome(
                    req, Verdict.NOT_REACHED, None, "the case ended before a step decided it"
                )
            )
    return outcomes


class StepsMixin:
    """Gives a case context ``step`` and ``decide`` (see the module's docstring); the context
    provides a ``steps`` recorder."""

    __slots__ = ()

    steps: StepRecorder

    def step(self, requirements: str | Sequence[str], name: str, *, gate: bool = False) -> _Step:
        """Open a step deciding ``requirements`` (see StepRecorder.step)."""
        return self.steps.step(requirements, name, gate=gate)

    def decide(
        self,
        requirements: str | Sequence[str],
        name: str,
        condition: object,
        message: str,
        *,
        gate: bool = False,
    ) -> bool:
        """Record a one-line step (see StepRecorder.decide)."""
        return self.steps.decide(requirements, name, condition, message, gate=gate)

    def check(self, condition: object, message: str) -> None:
        """Fail unless ``condition`` holds (see StepRecorder.check)."""
        self.steps.check(condition, message)

    def not_applicable(self, requirements: str | Sequence[str], name: str, why: str) -> None:
        """Record that ``requirements`` do not apply to this subject (a capability it does not
        announce, say): they are reported "not applicable", not passed."""
        self.steps.record(_ids(requirements), name, Verdict.NOT_APPLICABLE, why)
