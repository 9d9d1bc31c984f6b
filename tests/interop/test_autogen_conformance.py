"""Both conformance suites against AutoGen 0.7.5, as the harness's own subjects.

The host suite (`--legacy`) plays workers against AutoGen's `GrpcWorkerAgentRuntimeHost`
(interop/autogen/host_for_conformance.py); the worker suite plays the host for an AutoGen
`GrpcWorkerAgentRuntime` running the conformance agent (interop/autogen/conformance_adapter.py).
AutoGen is the subject being documented, so failed cases are expected: these tests check that
each suite produces a result and that it detects the known departures from the spec (see
interop/autogen/REPORT.md), reading the cases' statuses from report.json.

Each run is limited to a representative subset of cases (`--case` globs) to keep the time
down; interop/autogen/run_conformance.sh runs everything.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from tests.interop._autogen import AUTOGEN_DIR, ROOT

RUN_DEADLINE_S = 180.0

HOST_CASES = [
    "host/connection/legacy-path",
    "host/publish/topic-matching",
    "host/rpc/routing",
    "host/rpc/correlation/colliding-request-ids",
    "host/rpc/unknown-target",
    "host/rpc/target-disconnects",
    "host/rpc/deadline/*",
    "host/registration/conflict",
]

WORKER_CASES = [
    "worker/registration/conformance-agent",
    "worker/rpc/ping/json",
    "worker/rpc/ping/protobuf",
    "worker/rpc/handler-failure",
    "worker/rpc/unsupported-payload",
    "worker/events/broadcast/json",
    "worker/events/broadcast/protobuf",
    "worker/publish/envelope/json",
    "worker/handshake/hello",
]


def run_suite(
    suite: str, cases: list[str], extra: list[str], command: list[str], report_dir: pathlib.Path
) -> tuple[dict[str, str], dict[str, Any], str]:
    """Runs one suite; returns each case's status, the report's summary and the console text."""
    argv = [sys.executable, "-m", "conformance", suite, "--report-dir", str(report_dir), *extra]
    for case in cases:
        argv += ["--case", case]
    argv += ["--", *command]
    try:
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_DEADLINE_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the {suite} suite took longer than {RUN_DEADLINE_S:g} s: {exc}")
    console = done.stdout + done.stderr
    # 0: every case passed; 1: some failed; 2: NO RESULT.
    assert done.returncode in (0, 1), f"{suite} suite exit {done.returncode}:\n{console[-4000:]}"
    report_path = report_dir / "report.json"
    assert report_path.is_file(), f"no report.json:\n{console[-4000:]}"
    report = json.loads(report_path.read_text())
    assert not report["summary"].get("no_result"), report["summary"]
    statuses = {case["id"]: case["status"] for case in report["cases"]}
    return statuses, report["summary"], console


def test_host_suite_finds_autogen_host_defects(autogen_venv: str, tmp_path: pathlib.Path) -> None:
    statuses, summary, console = run_suite(
        "host",
        HOST_CASES,
        ["--legacy"],
        [autogen_venv, str(AUTOGEN_DIR / "host_for_conformance.py"), "--address", "{address}"],
        tmp_path / "host",
    )
    context = f"{summary['line']}\n{console[-6000:]}"
    # What AutoGen's host does right: it is reached on the legacy path and routes.
    assert statuses["host/connection/legacy-path"] == "PASS", context
    assert statuses["host/publish/topic-matching"] == "PASS", context
    assert statuses["host/rpc/routing"] == "PASS", context
    # Correlation by request id alone (AWP-RPC-004): colliding ids reach the target unchanged.
    assert statuses["host/rpc/correlation/colliding-request-ids"] == "FAIL", context
    # No error response for an unknown target (AWP-RPC-003), nor for a target that went away.
    assert statuses["host/rpc/unknown-target"] == "FAIL", context
    assert statuses["host/rpc/target-disconnects"] == "FAIL", context
    # INVALID_ARGUMENT instead of ALREADY_EXISTS for a second registration (AWP-REG-003).
    assert statuses["host/registration/conflict"] == "FAIL", context
    # The deadline cases need the v1 extensions, so a legacy run cannot check them: they are
    # reported as skipped, never as passed.
    deadline_cases = [c for c in statuses if c.startswith("host/rpc/deadline/")]
    assert deadline_cases, context
    for case in deadline_cases:
        assert statuses[case] == "SKIP", (case, context)
    assert summary["failed"] >= 4, context


def test_worker_suite_runs_autogen_adapter(autogen_venv: str, tmp_path: pathlib.Path) -> None:
    statuses, summary, console = run_suite(
        "worker",
        WORKER_CASES,
        [],
        [autogen_venv, str(AUTOGEN_DIR / "conformance_adapter.py")],
        tmp_path / "worker",
    )
    context = f"{summary['line']}\n{console[-6000:]}"
    # What AutoGen can do: register with the three subscriptions, answer a JSON Ping, receipt
    # JSON and protobuf events, publish JSON events.
    for case in (
        "worker/registration/conformance-agent",
        "worker/rpc/ping/json",
        "worker/events/broadcast/json",
        "worker/events/broadcast/protobuf",
        "worker/publish/envelope/json",
    ):
        assert statuses[case] == "PASS", (case, context)
    # What it cannot: a protobuf reply (every reply is application/json, AWP-CNF-003), an
    # error_code on an error response (AWP-ERR-002, AWP-CNF-006), a hello (AWP-VER-010).
    for case in (
        "worker/rpc/ping/protobuf",
        "worker/rpc/handler-failure",
        "worker/rpc/unsupported-payload",
        "worker/handshake/hello",
    ):
        assert statuses[case] == "FAIL", (case, context)
