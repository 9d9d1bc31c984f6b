"""The requirement matrix: each requirement binding the suite's subject, the cases that cite
it and a verdict."""

from __future__ import annotations

from dataclasses import dataclass

from conformance._results import CaseResult, Status, SuiteResult
from conformance._spec import Requirement, SpecIndex

__all__ = ["MatrixRow", "requirement_matrix"]


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One requirement: its verdict is ``fail`` when any citing case failed, ``pass`` when
    every citing case that ran passed, ``xfail`` for expected failures only, ``skipped`` when
    no citing case ran, ``untested`` when no case cites it."""

    requirement: Requirement
    cases: tuple[CaseResult, ...]
    verdict: str


def _verdict(cases: list[CaseResult]) -> str:
    if not cases:
        return "untested"
    statuses = {c.status for c in cases}
    if Status.FAIL in statuses or Status.XPASS in statuses:
        return "fail"
    if Status.XFAIL in statuses:
        return "xfail"
    if Status.PASS in statuses:
        return "pass"
    return "skipped"


def requirement_matrix(result: SuiteResult, spec: SpecIndex) -> list[MatrixRow]:
    """Return one row per requirement binding the suite's subject, in spec order."""
    rows = []
    for req in spec.for_subject(result.suite):
        cases = [r for r in result.results if req.id in r.requirements]
        rows.append(MatrixRow(req, tuple(cases), _verdict(cases)))
    return rows
