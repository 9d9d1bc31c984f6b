"""Case results, suite results, the summary line and the exit-status policy."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from conformance._cases import Level
from conformance._steps import RequirementOutcome, StepResult, Verdict

__all__ = [
    "CaseResult",
    "Policy",
    "Status",
    "SuiteResult",
]


class Status(enum.Enum):
    """The outcome of one case."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    XFAIL = "XFAIL"  # failed, and listed as an expected failure
    XPASS = "XPASS"  # passed, although listed as an expected failure: fails the run


class Policy(enum.Enum):
    """Which failures make the run fail: ``core`` only MUST cases (core and capability),
    ``should`` every case."""

    CORE = "core"
    SHOULD = "should"


@dataclass(slots=True)
class CaseResult:
    """The result of one case: status, duration, message and wire trace."""

    case_id: str
    requirements: tuple[str, ...]
    level: Level
    status: Status
    duration_s: float = 0.0
    message: str = ""
    skip_reason: str = ""
    trace: list[str] = field(default_factory=list)
    replay: str = ""
    # The steps the case recorded, and its verdict on each requirement (from the steps).
    steps: list[StepResult] = field(default_factory=list)
    outcomes: list[RequirementOutcome] = field(default_factory=list)

    def outcome(self, requirement: str) -> RequirementOutcome | None:
        """Return the case's verdict on ``requirement``, if it decided one."""
        for o in self.outcomes:
            if o.requirement == requirement:
                return o
        return None

    @property
    def failed_outcomes(self) -> list[RequirementOutcome]:
        """Return the requirements the case found violated."""
        return [o for o in self.outcomes if o.verdict is Verdict.FAIL]

    @property
    def counts_as_failure(self) -> bool:
        """Return whether the result is a failure (FAIL or an unexpected pass)."""
        return self.status in (Status.FAIL, Status.XPASS)


@dataclass(slots=True)
class SuiteResult:
    """The results of one run, with what ran against what."""

    suite: str
    subject: str
    harness_version: str
    spec_version: str
    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # stale expected-failure entries, ...
    no_result: str = ""  # set when the run reached no subject or ran no case
    manifest: str = ""  # what a worker announced in its hello (worker suite)

    @property
    def passed(self) -> int:
        """Return the number of cases that passed."""
        return sum(1 for r in self.results if r.status is Status.PASS)

    @property
    def failed(self) -> int:
        """Return the number of failures: failed cases, unexpected passes and problems."""
        return sum(1 for r in self.results if r.counts_as_failure) + len(self.problems)

    @property
    def skipped(self) -> int:
        """Return the number of cases not counted as passed or failed: skipped cases and
        expected failures."""
        return sum(1 for r in self.results if r.status in (Status.SKIP, Status.XFAIL))

    @property
    def executed(self) -> int:
        """Return the number of cases whose body ran to a verdict."""
        return sum(1 for r in self.results if r.status is not Status.SKIP)

    def summary_line(self) -> str:
        """Return the final line of the console report."""
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"

    def ok(self, policy: Policy = Policy.CORE) -> bool:
        """Return whether the run succeeded under ``policy``."""
        if self.no_result or self.problems:
            return False
        for r in self.results:
            if r.status is Status.XPASS:
                return False
            if r.status is Status.FAIL and (
                policy is Policy.SHOULD or r.level is not Level.QUALITY
            ):
                return False
        return True

    def exit_code(self, policy: Policy = Policy.CORE) -> int:
        """Return 0 on success, 1 on failure, 2 for NO RESULT."""
        if self.no_result:
            return 2
        return 0 if self.ok(policy) else 1
