"""interop/autogen/write_report.py: REPORT.md gives every requirement's verdict under its spec
section, with the case and step that decided it, and each failed case with its cause."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

from tests.interop._autogen import AUTOGEN_DIR


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("write_report", AUTOGEN_DIR / "write_report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(suite: str) -> dict[str, Any]:
    case = f"{suite}/subscriptions/conflicts"
    return {
        "harness_version": "0.1.0",
        "spec_version": "1.0.0-draft",
        "summary": {"line": "1 passed, 1 failed, 0 skipped"},
        "cases": [
            {
                "id": case,
                "status": "FAIL",
                "requirements": [
                    {"id": "AWP-SUB-002", "verdict": "fail", "step": "s1", "message": "got X"},
                    {"id": "AWP-SUB-004", "verdict": "not_reached", "step": None, "message": "e"},
                ],
                "steps": [{"name": "s1", "verdict": "fail", "message": "got X"}],
            },
            {"id": f"{suite}/ok", "status": "PASS", "requirements": [], "steps": []},
        ],
        "requirement_verdicts": {
            "AWP-SUB-002": {
                "verdict": "fail",
                "level": "MUST",
                "section": "8. Subscriptions and topic matching",
                "cases": [
                    {"case": f"{suite}/ok", "step": "s0", "verdict": "pass"},
                    {"case": case, "step": "s1", "verdict": "fail"},
                ],
            },
            "AWP-SUB-004": {
                "verdict": "not_reached",
                "level": "MUST",
                "section": "8. Subscriptions and topic matching",
                "cases": [{"case": case, "step": None, "verdict": "not_reached"}],
            },
            "AWP-CONN-001": {
                "verdict": "untested",
                "level": "MUST",
                "section": "4.1 Transport",
                "cases": [],
            },
        },
    }


def test_report_gives_each_requirement_verdict_per_section_with_its_deciding_step() -> None:
    generator = _generator()
    text = generator.render(_report("host"), _report("worker"), date="2026-12-04", versions="v")
    assert "1 fail, 1 not reached, 1 untested |" in text
    assert "#### 8. Subscriptions and topic matching" in text
    assert "| AWP-SUB-002 | MUST | **fail** | `host/subscriptions/conflicts`: s1 | got X |" in text
    assert "| AWP-SUB-004 | MUST | not reached | `host/subscriptions/conflicts`: " in text
    assert "Untested (no case of this suite cites it): AWP-CONN-001." in text
    # The section summary counts both suites; 8 is the spec's subscriptions section.
    assert "| 8. Subscriptions and topic matching |  | 1 | 1 |  |  | 1 | 1 |  |" in text
    # A failed case shows its first failed step and AutoGen's known cause.
    assert "| `host/subscriptions/conflicts` | AWP-SUB-002 | s1: got X | AutoGen's host" in text
    assert "Passed (1): `worker/ok`." in text
