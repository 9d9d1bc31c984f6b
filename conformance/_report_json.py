"""The JSON report."""

from __future__ import annotations

import json
from typing import Any

from conformance._results import SuiteResult

__all__ = ["json_report", "report_dict"]


def report_dict(result: SuiteResult) -> dict[str, Any]:
    """Return the report as plain data."""
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
    }


def json_report(result: SuiteResult) -> str:
    """Return the report as indented JSON."""
    return json.dumps(report_dict(result), indent=2, ensure_ascii=False) + "\n"
