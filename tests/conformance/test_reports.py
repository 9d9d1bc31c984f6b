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
from conformance._version import HARNESS_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _result() -> SuiteResult:
    spec = load_spec_index()
    result = SuiteResult("host", "attached to <x>", HARNESS_VERSION, spec.version)
    result.results = [
        CaseResult("host/a", ("AWP-RPC-004",), Level.CORE, Status.PASS, 0.1),
        CaseResult(
            "host/b",
            ("AWP-RPC-005", "AWP-RPC-004"),
            Level.CORE,
            Status.FAIL,
            0.2,
            message="got <script>alert(1)</script> & more",
            trace=["   1.0 ms  w  -> frame"],
            replay="python -m conformance host --address x --case host/b",
        ),
        CaseResult(
            "host/c", ("AWP-BAT-003",), Level.CAPABILITY, Status.SKIP, skip_reason="not claimed"
        ),
    ]
    return result


def test_spec_version_comes_from_the_requirement_index() -> None:
    data = json.loads((ROOT / "spec" / "requirements.json").read_text())
    assert load_spec_index().version == data["version"]
    assert len(load_spec_index().requirements) == len(data["requirements"])


def test_reports_are_written(tmp_path: Path) -> None:
    result = _result()
    write_reports(result, tmp_path)
    text = (tmp_path / "report.json").read_text()
    # The schema of report.json is the ConformanceReport message (report.proto).
    message = json_format.Parse(text, report_pb2.ConformanceReport())
    assert message.summary.line == "1 passed, 1 failed, 1 skipped"
    assert [c.id for c in message.cases] == ["host/a", "host/b", "host/c"]
    report = json.loads(text)
    assert report["harness_version"] == HARNESS_VERSION
    assert report["spec_version"] == load_spec_index().version
    assert report["subject"] == "attached to <x>"
    assert report["summary"]["line"] == "1 passed, 1 failed, 1 skipped"
    assert [c["status"] for c in report["cases"]] == ["PASS", "FAIL", "SKIP"]
    assert report["cases"][1]["requirements"] == ["AWP-RPC-005", "AWP-RPC-004"]
    matrix = {row["id"]: row for row in report["requirements"]}
    assert matrix["AWP-RPC-004"] == {
        "id": "AWP-RPC-004",
        "level": "MUST",
        "verdict": "fail",
        "cases": ["host/a", "host/b"],
    }
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
    assert "Untested MUST requirements" in html


def test_requirement_matrix() -> None:
    rows = {r.requirement.id: r for r in requirement_matrix(_result(), load_spec_index())}
    assert rows["AWP-RPC-004"].verdict == "fail"  # one citing case failed
    assert rows["AWP-RPC-005"].verdict == "fail"
    assert rows["AWP-BAT-003"].verdict == "skipped"
    assert rows["AWP-CONN-002"].verdict == "untested"
    assert all(r.requirement.subject in ("host", "peer") for r in rows.values())
    assert "AWP-RPC-006" not in rows  # a worker requirement
