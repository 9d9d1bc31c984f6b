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

from conformance._results import CaseResult, Status, SuiteResult

__all__ = [
    "ExpectedFailure",
    "apply_expected_failure",
    "apply_expected_failures",
    "load_expected_failures",
    "stale_entries",
]


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


def apply_expected_failure(record: CaseResult, entries: Iterable[ExpectedFailure]) -> None:
    """Turn ``record`` into XFAIL when it failed and is listed, or XPASS when it passed and
    is listed."""
    entry = next((e for e in entries if e.case == record.case_id), None)
    if entry is None:
        return
    if record.status is Status.FAIL:
        record.status = Status.XFAIL
        record.message = f"expected failure ({entry.reason}): {record.message}"
    elif record.status is Status.PASS:
        record.status = Status.XPASS
        record.message = (
            f"passed, but listed as an expected failure ({entry.reason}); "
            "remove the entry from the expected-failures file"
        )


def stale_entries(entries: Iterable[ExpectedFailure], known_case_ids: set[str]) -> list[str]:
    """Return a problem line for each entry naming no known case."""
    return [
        f"stale expected-failure entry: {e.case} is not a known case ({e.reason})"
        for e in entries
        if e.case not in known_case_ids
    ]


def apply_expected_failures(
    result: SuiteResult, entries: Iterable[ExpectedFailure], known_case_ids: set[str]
) -> None:
    """Apply the entries to every result of a finished run and record stale entries as
    problems of the run."""
    entries = list(entries)
    result.problems.extend(stale_entries(entries, known_case_ids))
    for record in result.results:
        apply_expected_failure(record, entries)
