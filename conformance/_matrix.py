"""The requirement matrix: each requirement binding the suite's subject, the steps that decided
it in each case and a verdict built from those step verdicts (never from a case's overall
status)."""

from __future__ import annotations

from dataclasses import dataclass

from conformance._results import CaseResult, Status, SuiteResult
from conformance._spec import Requirement, SpecIndex
from conformance._steps import RequirementOutcome, Verdict

__all__ = ["Decision", "MatrixRow", "aggregate", "requirement_matrix"]

UNTESTED = "untested"


@dataclass(frozen=True, slots=True)
class Decision:
    """One case's verdict on a requirement and the step that decided it (None: decided by the
    case's status, the case having no step for it)."""

    case: CaseResult
    outcome: RequirementOutcome

    @property
    def expected(self) -> bool:
        """Return whether the case is listed as an expected failure."""
        return self.case.status in (Status.XFAIL, Status.XPASS)


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One requirement and its verdict: ``fail`` when any case's step found it violated,
    ``pass`` when steps found it holds and none violated, ``not_reached`` when citing cases
    ran but none got to decide it, ``not_applicable`` when every citing case was skipped,
    ``untested`` when no case cites it. ``expected_failure`` is set when every failing
    decision comes from a case listed as an expected failure."""

    requirement: Requirement
    decisions: tuple[Decision, ...]
    verdict: str
    expected_failure: bool = False

    @property
    def cases(self) -> tuple[CaseResult, ...]:
        """Return the cases that cite or decided the requirement."""
        return tuple(d.case for d in self.decisions)

    @property
    def deciding(self) -> Decision | None:
        """Return the decision the verdict comes from (the first one with that verdict)."""
        for d in self.decisions:
            if d.outcome.verdict.value == self.verdict:
                return d
        return None


def aggregate(verdicts: list[Verdict]) -> str:
    """Return the combined verdict of decisions (``untested`` when there are none)."""
    return Verdict.combine(verdicts).value if verdicts else UNTESTED


def requirement_matrix(result: SuiteResult, spec: SpecIndex) -> list[MatrixRow]:
    """Return one row per requirement binding the suite's subject, in spec order."""
    rows = []
    for req in spec.for_subject(result.suite):
        decisions = tuple(
            Decision(case, outcome)
            for case in result.results
            if (outcome := case.outcome(req.id)) is not None
        )
        verdict = aggregate([d.outcome.verdict for d in decisions])
        failing = [d for d in decisions if d.outcome.verdict is Verdict.FAIL]
        expected = bool(failing) and all(d.expected for d in failing)
        rows.append(MatrixRow(req, decisions, verdict, expected))
    return rows
