"""The JSON report: a `agentworker.conformance.v1.ConformanceReport` (protos/.../report.proto)
in the proto3 JSON mapping, extended with the per-requirement verdicts of the steps:

- each case's ``requirements`` is a list of objects ``{"id", "verdict", "step", "message",
  "decided_by"}`` instead of a list of ids: ``verdict`` is ``pass``, ``fail``,
  ``not_reached`` or ``not_applicable``; ``step`` names the step that decided it, or is null
  when no step did and the case's status stood in (``decided_by`` is then ``"case"``, else
  ``"step"``); ``message`` is the failure text or null;
- each case gains ``steps``: every step it recorded (``name``, ``requirements``, ``verdict``,
  ``message``);
- the report gains ``requirement_verdicts``: per requirement the combined verdict (fail beats
  pass beats not reached beats not applicable; ``untested`` when no case cites it), its level,
  section and text, whether every failure is an expected one, and the deciding step of each
  case;
- the rows of ``requirements`` (the matrix) carry the same combined verdict."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from agentworker.conformance.v1 import report_pb2
from conformance._coverage_gaps import NOT_COVERED
from conformance._matrix import MatrixRow, requirement_matrix
from conformance._results import CaseResult, SuiteResult
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


def _case_requirements(case: CaseResult) -> list[dict[str, Any]]:
    return [
        {
            "id": o.requirement,
            "verdict": o.verdict.value,
            "step": o.step,
            "message": o.message or None,
            "decided_by": "case" if o.by_case else "step",
        }
        for o in case.outcomes
    ]


def _steps(case: CaseResult) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "requirements": list(s.requirements),
            "verdict": s.verdict.value,
            "message": s.message or None,
        }
        for s in case.steps
    ]


def _verdicts(rows: list[MatrixRow]) -> dict[str, Any]:
    return {
        row.requirement.id: {
            "verdict": row.verdict,
            "level": row.requirement.level,
            "section": row.requirement.section,
            "text": row.requirement.text,
            "expected_failure": row.expected_failure,
            "cases": [
                {
                    "case": d.case.case_id,
                    "step": d.outcome.step,
                    "verdict": d.outcome.verdict.value,
                    "decided_by": "case" if d.outcome.by_case else "step",
                }
                for d in row.decisions
            ],
        }
        for row in rows
    }


def report_dict(result: SuiteResult, spec: SpecIndex | None = None) -> dict[str, Any]:
    """Return the report as plain data (the JSON mapping of `report_message`, extended with
    the per-requirement verdicts; see the module's docstring)."""
    spec = spec if spec is not None else load_spec_index()
    data = json_format.MessageToDict(
        report_message(result, spec),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    for case, record in zip(data["cases"], result.results, strict=True):
        case["requirements"] = _case_requirements(record)
        case["steps"] = _steps(record)
    data["requirement_verdicts"] = _verdicts(requirement_matrix(result, spec))
    return data


def json_report(result: SuiteResult, spec: SpecIndex | None = None) -> str:
    """Return the report as indented JSON."""
    return json.dumps(report_dict(result, spec), indent=2, ensure_ascii=False) + "\n"
