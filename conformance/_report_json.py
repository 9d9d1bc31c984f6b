"""The JSON report."""

from __future__ import annotations

import json
from typing import Any

from conformance._coverage_gaps import NOT_COVERED
from conformance._matrix import requirement_matrix
from conformance._results import SuiteResult
from conformance._spec import SpecIndex, load_spec_index

__all__ = ["json_report", "report_dict"]


def report_dict(result: SuiteResult, spec: SpecIndex | None = None) -> dict[str, Any]:
    """Return the report as plain data, with the requirement matrix."""
    rows = requirement_matrix(result, spec if spec is not None else load_spec_index())
    return {
        "harness_version": result.harness_version,
        "spec_version": result.spec_version,
        "suite": result.suite,
        "subject": result.subject,
        "summary": {
            "passed": result.passed,
            "failed": result.failed,
            "skipped": result.skipped,
            "line": result.summary_line(),
            "no_result": result.no_result or None,
        },
        "problems": list(result.problems),
        "cases": [
            {
                "id": r.case_id,
                "status": r.status.value,
                "skip_reason": r.skip_reason or None,
                "level": r.level.value,
                "requirements": list(r.requirements),
                "duration_s": round(r.duration_s, 4),
                "message": r.message,
                "trace": r.trace,
                "replay": r.replay,
            }
            for r in result.results
        ],
        "requirements": [
            {
                "id": row.requirement.id,
                "level": row.requirement.level,
                "verdict": row.verdict,
                "cases": [c.case_id for c in row.cases],
            }
            for row in rows
        ],
        "untested_must": [
            row.requirement.id
            for row in rows
            if row.verdict == "untested" and row.requirement.level == "MUST"
        ],
        "untested_must_reasons": {
            row.requirement.id: NOT_COVERED.get(result.suite, {}).get(row.requirement.id, "")
            for row in rows
            if row.verdict == "untested" and row.requirement.level == "MUST"
        },
    }


def json_report(result: SuiteResult, spec: SpecIndex | None = None) -> str:
    """Return the report as indented JSON."""
    return json.dumps(report_dict(result, spec), indent=2, ensure_ascii=False) + "\n"
