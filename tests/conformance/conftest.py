"""Shared helpers: the broken-host fixture's command and running the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.pytest_plugin import conformance_host_suite, conformance_worker_suite

__all__ = [
    "CliRun",
    "conformance_host_suite",
    "conformance_worker_suite",
    "run_cli",
    "tiny_host_command",
]

ROOT = Path(__file__).resolve().parents[2]
TINY_HOST = Path(__file__).resolve().parent / "fixtures" / "tiny_host.py"
# Every wait in the suite is scaled; the machine may be busy with other test suites.
SCALE = os.environ.get("CONFORMANCE_TEST_TIMEOUT_SCALE", "2")


def tiny_host_command(*defects: str) -> list[str]:
    """Return the command that starts the tiny host with ``defects``."""
    command = [sys.executable, str(TINY_HOST), "--address", "{address}"]
    for defect in defects:
        command += ["--defect", defect]
    return command


@dataclass
class CliRun:
    """The outcome of one `python -m conformance` run."""

    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def status(self, case_id: str) -> str:
        """Return the status of ``case_id`` in the JSON report."""
        assert self.report is not None, self.stdout
        for case in self.report["cases"]:
            if case["id"] == case_id:
                return str(case["status"])
        raise AssertionError(f"{case_id} not in the report")

    def failed_ids(self) -> set[str]:
        """Return the ids of failed cases."""
        assert self.report is not None, self.stdout
        return {c["id"] for c in self.report["cases"] if c["status"] in ("FAIL", "XPASS")}


def run_cli(
    args: list[str], report_dir: Path | None = None, *, scale: str = SCALE, timeout: float = 120
) -> CliRun:
    """Run `python -m conformance ARGS` and parse its report; with ``report_dir`` (for
    `host` runs) also pass --report-dir and --timeout-scale ``scale``."""
    argv = [sys.executable, "-m", "conformance", *args]
    if report_dir is not None:
        split = argv.index("--") if "--" in argv else len(argv)
        argv[split:split] = ["--report-dir", str(report_dir), "--timeout-scale", scale]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    report = None
    if report_dir is not None and (report_dir / "report.json").exists():
        report = json.loads((report_dir / "report.json").read_text())
    return CliRun(done.returncode, done.stdout, done.stderr, report)


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    """Return a fresh report directory."""
    return tmp_path / "reports"
