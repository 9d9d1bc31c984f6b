"""Reads which cases (or steps) of a JSON report decided a requirement against the subject.

The one place that knows the report's shape: reports that give per-requirement step
verdicts (each case's ``requirements`` is a list of ``{"id", "verdict", "step", ...}``) are
read step by step; older reports (``requirements`` lists ids) fall back to the failed cases
that cite the requirement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["case_of", "caught_by", "has_step_verdicts"]

_FAILED_CASE = ("FAIL", "XPASS")


def caught_by(report: Mapping[str, Any], requirement: str) -> list[str]:
    """Return the cases (``case`` or ``case#step``) whose verdict on ``requirement`` is a
    failure, in report order."""
    found: list[str] = []
    for case in report.get("cases", []):
        for entry in case.get("requirements", []):
            if isinstance(entry, Mapping):
                if entry.get("id") == requirement and entry.get("verdict") == "fail":
                    step = entry.get("step") or ""
                    found.append(f"{case['id']}#{step}" if step else str(case["id"]))
            elif entry == requirement and case.get("status") in _FAILED_CASE:
                found.append(str(case["id"]))
    return found


def case_of(caught: str) -> str:
    """Return the case id of an entry of ``caught_by``."""
    return caught.split("#", 1)[0]


def has_step_verdicts(report: Mapping[str, Any]) -> bool:
    """Return whether the report gives per-requirement step verdicts."""
    return any(
        isinstance(entry, Mapping)
        for case in report.get("cases", [])
        for entry in case.get("requirements", [])
    )
