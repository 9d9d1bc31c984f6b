"""Expected-failure lists: known failures of one implementation, kept honest.

A file is JSON (a list of ``{"case": ..., "reason": ...}`` objects, or an object with such a
list under ``expected_failures``) or TOML (``[[expected_failures]]`` tables with ``case`` and
``reason``). A listed case that fails is reported XFAIL; one that passes is XPASS and fails
the run; an entry naming no known case is stale and fails the run."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance._results import Status, SuiteResult

__all__ = ["ExpectedFailure", "apply_expected_failures", "load_expected_failures"]


@dataclass(frozen=True, slots=True)
class ExpectedFailure:
    """One entry: the case id and why it is expected to fail."""

    case: str
    reason: str


def _entries(data: Any, source: str) -> list[ExpectedFailure]:
    if isinstance(data, dict):
        data = data.get("expected_failures", [])
    if not isinstance(data, list):
        raise ValueError(f"{source}: expected a list of {{case, reason}} entries")
    out = []
    for n, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("case"), str):
            raise ValueError(f"{source}: entry {n} has no string `case`")
        reason = item.get("reason", "")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{source}: entry {n} ({item['case']}) has no `reason`")
        out.append(ExpectedFailure(case=item["case"], reason=reason))
    return out


def load_expected_failures(path: Path) -> list[ExpectedFailure]:
    """Load an expected-failures file (TOML when it ends in .toml, else JSON)."""
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return _entries(data, str(path))


def apply_expected_failures(
    result: SuiteResult, entries: Iterable[ExpectedFailure], known_case_ids: set[str]
) -> None:
    """Turn listed failures into XFAIL and listed passes into XPASS, and record stale entries
    (unknown case ids) as problems of the run."""
    by_case = {e.case: e for e in entries}
    for case_id, listed in by_case.items():
        if case_id not in known_case_ids:
            result.problems.append(
                f"stale expected-failure entry: {case_id} is not a known case ({listed.reason})"
            )
    for r in result.results:
        entry = by_case.get(r.case_id)
        if entry is None:
            continue
        if r.status is Status.FAIL:
            r.status = Status.XFAIL
            r.message = f"expected failure ({entry.reason}): {r.message}"
        elif r.status is Status.PASS:
            r.status = Status.XPASS
            r.message = (
                f"passed, but listed as an expected failure ({entry.reason}); "
                "remove the entry from the expected-failures file"
            )
