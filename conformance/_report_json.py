"""The JSON report: a `agentworker.conformance.v1.ConformanceReport` (protos/.../report.proto)
in the proto3 JSON mapping, so the schema of report.json is defined with the protocol's own."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from agentworker.conformance.v1 import report_pb2
from conformance._coverage_gaps import NOT_COVERED
from conformance._matrix import requirement_matrix
from conformance._results import SuiteResult
from conformance._spec import SpecIndex, load_spec_index

__all__ = ["json_report", "report_dict", "report_message"]


def report_message(
    result: SuiteResult, spec: SpecIndex | None = None
) -> report_pb2.ConformanceReport:
    """Return the report as its protobuf message, with the requirement matrix."""
    rows = requirement_matrix(result, spec if spec is not None else load_spec_index())
    untested = [
        row.requirement.id
        for row in rows
        if row.verdict == "untested" and row.requirement.level == "MUST"
    ]
    reasons = NOT_COVERED.get(result.suite, {})
    return report_pb2.ConformanceReport(
        harness_version=result.harness_version,
        spec_version=result.spec_version,
        suite=result.suite,
        subject=result.subject,
        manifest=result.manifest,
        summary=report_pb2.Summary(
            passed=result.passed,
            failed=result.failed,
            skipped=result.skipped,
            line=result.summary_line(),
            no_result=result.no_result,
        ),
        problems=result.problems,
        cases=[
            report_pb2.CaseReport(
                id=r.case_id,
                status=r.status.value,
                skip_reason=r.skip_reason,
                level=r.level.value,
                requirements=r.requirements,
                duration_s=round(r.duration_s, 4),
                message=r.message,
                trace=r.trace,
                replay=r.replay,
            )
            for r in result.results
        ],
        requirements=[
            report_pb2.RequirementVerdict(
                id=row.requirement.id,
                level=row.requirement.level,
                verdict=row.verdict,
                cases=[c.case_id for c in row.cases],
            )
            for row in rows
        ],
        untested_must=untested,
        untested_must_reasons={req_id: reasons.get(req_id, "") for req_id in untested},
    )


def report_dict(result: SuiteResult, spec: SpecIndex | None = None) -> dict[str, Any]:
    """Return the report as plain data (the JSON mapping of `report_message`)."""
    return json_format.MessageToDict(
        report_message(result, spec),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def json_report(result: SuiteResult, spec: SpecIndex | None = None) -> str:
    """Return the report as indented JSON."""
    return json.dumps(report_dict(result, spec), indent=2, ensure_ascii=False) + "\n"
