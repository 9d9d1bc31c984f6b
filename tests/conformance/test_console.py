"""The console report's lines."""

from __future__ import annotations

import io

from conformance import CaseResult, Level, Status, SuiteResult
from conformance._console import print_summary


def _render(result: SuiteResult) -> list[str]:
    out = io.StringIO()
    print_summary(result, out)
    return out.getvalue().splitlines()


def test_failures_show_message_trace_and_replay() -> None:
    result = SuiteResult("host", "attached to x", "0.1.0", "1.0.0-draft")
    result.results = [
        CaseResult("host/a", ("AWP-A",), Level.CORE, Status.PASS),
        CaseResult(
            "host/b",
            ("AWP-B",),
            Level.CORE,
            Status.FAIL,
            message="wrong answer",
            trace=["   1.0 ms  w  -> frame"],
            replay="python -m conformance host --address x --case host/b",
        ),
        CaseResult("host/c", ("AWP-C",), Level.CAPABILITY, Status.SKIP, skip_reason="not claimed"),
        CaseResult("host/d", ("AWP-D",), Level.CORE, Status.XFAIL, message="expected failure (r)"),
    ]
    lines = _render(result)
    assert lines[0].startswith("agentworker conformance 0.1.0, spec 1.0.0-draft, host suite")
    assert lines[1].startswith("PASS ")
    assert "host/a" in lines[1]
    assert lines[2].startswith("FAIL ")
    assert "[AWP-B]" in lines[2]
    assert "    wrong answer" in lines
    assert "    wire trace:" in lines
    assert "    replay: python -m conformance host --address x --case host/b" in lines
    assert any(line.startswith("SKIP(not claimed)") and "host/c" in line for line in lines)
    assert any(line.startswith("XFAIL") and "host/d" in line for line in lines)
    assert lines[-1] == "1 passed, 1 failed, 2 skipped"


def test_no_result_is_the_last_line() -> None:
    result = SuiteResult("host", "spawned: x", "0.1.0", "1.0.0-draft")
    result.no_result = "cannot reach the subject: it exited\nTraceback: boom"
    lines = _render(result)
    assert lines[-3:] == [
        "0 passed, 0 failed, 0 skipped",
        "    Traceback: boom",
        "NO RESULT: cannot reach the subject: it exited",
    ]
