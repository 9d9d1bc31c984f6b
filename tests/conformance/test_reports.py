"""The JSON, JUnit XML and HTML reports, and the requirement matrix."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from google.protobuf import json_format

from agentworker.conformance.v1 import report_pb2
from conformance import CaseResult, Level, Status, SuiteResult, load_spec_index
from conformance._matrix import requirement_matrix
from conformance._reports import write_reports
from conformance._steps import StepResult, Verdict, requirement_outcomes
from conformance._version import HARNESS_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _result() -> SuiteResult:
    spec = load_spec_index()
    result = SuiteResult("host", "attached to <x>", HARNESS_VERSION, spec.version)
    result.results = [
        CaseResult("host/a", ("AWP-RPC-004",), Level.CORE, Status.PASS, 0.1),
        CaseResult(
            "host/b",
            ("AWP-RPC-005", "AWP-RPC-004", "AWP-RPC-010"),
            Level.CORE,
            Status.FAIL,
            0.2,
            message="got <script>alert(1)</script> & more",
            trace=["   1.0 ms  w  -> frame"],
            replay="python -m conformance host --address x --case host/b",
            steps=[
                StepResult(("AWP-RPC-005",), "routed back", Verdict.PASS),
                StepResult(
                    ("AWP-RPC-004",), "one response", Verdict.FAIL, "got <script>alert(1)</script>"
                ),
            ],
        ),
        CaseResult(
            "host/c", ("AWP-BAT-003",), Level.CAPABILITY, Status.SKIP, skip_reason="not claimed"
        ),
    ]
    for r in result.results:
        r.outcomes = requirement_outcomes(
            r.requirements,
            r.steps,
            case_passed=r.status is Status.PASS,
            completed=r.status is Status.PASS,
            case_message=r.message,
            skipped=r.status is Status.SKIP,
        )
    return result


def test_spec_version_comes_from_the_requirement_index() -> None:
    data = json.loads((ROOT / "spec" / "requirements.json").read_text())
    assert load_spec_index().version == data["version"]
    assert len(load_spec_index().requirements) == len(data["requirements"])


def test_reports_are_written(tmp_path: Path) -> None:
    result = _result()
    write_reports(result, tmp_path)
    text = (tmp_path / "report.json").read_text()
    report = json.loads(text)
    # The schema of report.json is the ConformanceReport message (report.proto) but for the
    # per-requirement verdicts added to it (see conformance/_report_json.py).
    base = json.loads(text)
    del base["requirement_verdicts"]
    for case in base["cases"]:
        case["requirements"] = [r["id"] for r in case["requirements"]]
        del case["steps"]
    message = json_format.Parse(json.dumps(base), report_pb2.ConformanceReport())
    assert message.summary.line == "1 passed, 1 failed, 1 skipped"
    assert [c.id for c in message.cases] == ["host/a", "host/b", "host/c"]
    assert report["harness_version"] == HARNESS_VERSION
    assert report["spec_version"] == load_spec_index().version
    assert report["subject"] == "attached to <x>"
    assert report["summary"]["line"] == "1 passed, 1 failed, 1 skipped"
    assert [c["status"] for c in report["cases"]] == ["PASS", "FAIL", "SKIP"]
    assert report["cases"][1]["requirements"] == [
        {
            "id": "AWP-RPC-005",
            "verdict": "pass",
            "step": "routed back",
            "message": None,
            "decided_by": "step",
        },
        {
            "id": "AWP-RPC-004",
            "verdict": "fail",
            "step": "one response",
            "message": "got <script>alert(1)</script>",
            "decided_by": "step",
        },
        {
            "id": "AWP-RPC-010",
            "verdict": "not_reached",
            "step": None,
            "message": "the case ended before a step decided it",
            "decided_by": "step",
        },
    ]
    assert report["cases"][0]["requirements"][0]["decided_by"] == "case"
    assert report["cases"][2]["requirements"][0]["verdict"] == "not_applicable"
    matrix = {row["id"]: row for row in report["requirements"]}
    assert matrix["AWP-RPC-004"] == {
        "id": "AWP-RPC-004",
        "level": "MUST",
        "verdict": "fail",
        "cases": ["host/a", "host/b"],
    }
    verdicts = report["requirement_verdicts"]
    assert verdicts["AWP-RPC-004"]["verdict"] == "fail"
    assert verdicts["AWP-RPC-004"]["cases"] == [
        {"case": "host/a", "step": None, "verdict": "pass", "decided_by": "case"},
        {"case": "host/b", "step": "one response", "verdict": "fail", "decided_by": "step"},
    ]
    assert verdicts["AWP-RPC-005"]["verdict"] == "pass"
    assert verdicts["AWP-RPC-010"]["verdict"] == "not_reached"
    assert verdicts["AWP-BAT-003"]["verdict"] == "not_applicable"
    assert verdicts["AWP-CONN-002"]["verdict"] == "untested"
    assert verdicts["AWP-RPC-004"]["text"]
    assert "AWP-CONN-002" in report["untested_must"]

    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    failure = suite.find("testcase[@name='host/b']/failure")
    assert failure is not None
    assert "replay:" in (failure.text or "")

    html = (tmp_path / "report.html").read_text()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "attached to &lt;x&gt;" in html
    assert "Requirement matrix" in html
    assert "Requirements by spec section" in html
    assert html.index('id="failures"') < html.index("<h2>Cases</h2>")
    assert "<details><summary>wire trace" in html
    assert "Replay: <code" in html
    assert "Untested MUST requirements" in html


def test_requirement_matrix() -> None:
    rows = {r.requirement.id: r for r in requirement_matrix(_result(), load_spec_index())}
    assert rows["AWP-RPC-004"].verdict == "fail"  # a step citing it failed
    # From the steps, not the case's status: the failed case's step for RPC-005 passed.
    assert rows["AWP-RPC-005"].verdict == "pass"
    assert rows["AWP-RPC-010"].verdict == "not_reached"
    assert rows["AWP-BAT-003"].verdict == "not_applicable"
    assert rows["AWP-CONN-002"].verdict == "untested"
    assert all(r.requirement.subject in ("host", "peer") for r in rows.values())
    assert "AWP-RPC-006" not in rows  # a worker requirement
