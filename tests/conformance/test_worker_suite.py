"""The worker suite: it passes the reference worker and the broken-worker fixture without
defects, fails each deliberate defect on the right case, and runs in attach mode."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import Status, SuiteResult, select_worker_cases
from conformance._subject import free_port
from tests.conformance.conftest import ROOT, run_cli

BROKEN_WORKER = Path(__file__).resolve().parent / "fixtures" / "broken_worker.py"
EXPECTED = ROOT / "conformance" / "expected"


def broken_worker_command(*defects: str) -> list[str]:
    """Return the command that starts the broken worker with ``defects``."""
    command = [sys.executable, str(BROKEN_WORKER)]
    for defect in defects:
        command += ["--defect", defect]
    return command


# defect -> {case: requirement it must be reported against}
TARGETED = {
    "reuse-request-ids": {"worker/call/concurrent-out-of-order": "AWP-RPC-001"},
    "no-client-id-unary": {"worker/handshake/client-id-on-every-call": "AWP-CONN-002"},
    "drop-protobuf": {"worker/rpc/ping/protobuf": "AWP-RPC-006"},
    "silent-errors": {"worker/rpc/handler-failure": "AWP-RPC-006"},
    "ignore-sigterm": {"worker/lifecycle/sigterm-drains": "AWP-CONN-017"},
    "register-first": {"worker/handshake/channel-before-registration": "AWP-CONN-007"},
    "overlap-agents": {
        "worker/events/per-agent-order": "AWP-CONN-040",
        "worker/flow/deadline-passes-in-mailbox": "AWP-CONN-040",
    },
    "anonymous-receipts": {"worker/events/broadcast/json": "AWP-CNF-005"},
    "block-on-headers": {"worker/handshake/legacy-host-no-headers": "AWP-VER-015"},
    "answer-twice": {"worker/rpc/handler-failure": "AWP-RPC-006"},
    "deliver-to-sender": {"worker/events/not-to-sender": "AWP-SUB-012"},
}
# Workers with these defects never get ready, so no other case can pass.
STARTUP_DEFECTS = {"no-client-id-unary", "register-first"}
MESSAGES = {
    "reuse-request-ids": "outbound request ids repeat",
    "no-client-id-unary": "calls without client-id metadata",
    "drop-protobuf": "no response to request",
    "silent-errors": "no response to request",
    "register-first": "before opening the data channel",
    "overlap-agents": "AWP-CONN-040",
    "anonymous-receipts": "arrived with an empty event_id",
    # A worker that ignores SIGTERM keeps answering requests instead of refusing them.
    "ignore-sigterm": "expected ERROR_CODE_SHUTTING_DOWN",
    "block-on-headers": "the worker is not ready",
    "answer-twice": "further responses",
    "deliver-to-sender": "the agent named as the event's sender received it",
}


def test_worker_suite_passes_the_reference_worker(report_dir: Path) -> None:
    command = [sys.executable, "-m", "reference_worker.conformance_agents"]
    claims = ["--claim", "TLS", "--claim", "MUTUAL_TLS", "--claim", "BEARER_TOKEN"]
    run = run_cli(
        [
            "worker",
            *claims,
            "--expected-failures",
            str(EXPECTED / "reference_worker.toml"),
            "--",
            *command,
        ],
        report_dir,
    )
    assert run.returncode == 0, run.stdout
    assert run.report is not None
    assert run.report["suite"] == "worker"
    assert "capabilities CAPABILITY_BATCHING" in run.report["subject"]
    statuses = {c["id"]: c["status"] for c in run.report["cases"]}
    assert statuses
    assert all(s == "PASS" for s in statuses.values()), run.stdout
    # The reference worker declares batching, state and reconnect: those cases ran.
    assert statuses["worker/state/save-load"] == "PASS"
    assert statuses["worker/lifecycle/reconnect"] == "PASS"
    assert statuses["worker/security/mutual-tls"] == "PASS"
    assert run.stdout.splitlines()[-1] == f"{len(statuses)} passed, 0 failed, 0 skipped"
    for name in ("report.json", "junit.xml", "report.html"):
        assert (report_dir / name).exists(), name
    matrix = {row["id"]: row["verdict"] for row in run.report["requirements"]}
    assert matrix["AWP-RPC-001"] == "pass"
    assert "AWP-RPC-004" not in matrix  # a host requirement


def test_worker_suite_passes_the_fixture_without_defects(report_dir: Path) -> None:
    run = run_cli(["worker", "--", *broken_worker_command()], report_dir)
    assert run.returncode == 0, run.stdout
    assert run.report is not None
    core = [c for c in run.report["cases"] if c["level"] == "core"]
    assert core
    assert all(c["status"] == "PASS" for c in core), run.stdout
    skipped = {c["id"]: c["skip_reason"] for c in run.report["cases"] if c["status"] == "SKIP"}
    # The fixture declares no capability: every capability case is "not claimed".
    assert skipped
    assert set(skipped.values()) == {"not claimed"}
    assert all(c["level"] == "capability" for c in run.report["cases"] if c["id"] in skipped)


@pytest.mark.parametrize("defect", sorted(TARGETED))
def test_worker_defect_fails_its_case(defect: str, report_dir: Path) -> None:
    cases = TARGETED[defect]
    args = ["worker"]
    baseline = [] if defect in STARTUP_DEFECTS else ["worker/rpc/ping/json"]
    for case_id in [*cases, *baseline]:
        args += ["--case", case_id]
    # Unscaled: the targeted cases fail by waiting out their deadlines.
    run = run_cli([*args, "--", *broken_worker_command(defect)], report_dir, scale="1")
    assert run.returncode == 1, run.stdout
    assert run.report is not None
    for case in run.report["cases"]:
        if case["id"] in cases:
            assert case["status"] == "FAIL", run.stdout
            # The requirement is failed by a step of its own, not by the case's status.
            verdicts = {r["id"]: r for r in case["requirements"]}
            caught = verdicts[cases[case["id"]]]
            assert caught["verdict"] == "fail", case["requirements"]
            assert caught["decided_by"] == "step", case["requirements"]
            assert MESSAGES[defect] in case["message"], case["message"]
            assert case["replay"].startswith("python -m conformance worker ")
    if baseline:
        assert run.status("worker/rpc/ping/json") == "PASS"


def test_crash_is_attributed_to_the_running_case_and_the_worker_restarts(
    report_dir: Path,
) -> None:
    run = run_cli(
        [
            "worker",
            "--case",
            "worker/robustness/unknown-fields-and-cases",
            "--case",
            "worker/rpc/ping/json",
            "--",
            *broken_worker_command("crash-on-unknown-frame"),
        ],
        report_dir,
    )
    assert run.returncode == 1, run.stdout
    assert run.failed_ids() == {"worker/robustness/unknown-fields-and-cases"}
    assert run.status("worker/rpc/ping/json") == "PASS"
    assert "the worker exited with status 3 during this case" in run.stdout
    assert "a frame with no known case" in run.stdout  # the worker's output, per case


def test_security_cases_fail_a_worker_without_tls(report_dir: Path) -> None:
    # The fixture ignores AGENTWORKER_TLS_*: it cannot reach a TLS host.
    run = run_cli(
        [
            "worker",
            "--claim",
            "TLS",
            "--case",
            "worker/security/tls",
            "--",
            *broken_worker_command(),
        ],
        report_dir,
        scale="1",
    )
    assert run.returncode == 1, run.stdout
    assert run.status("worker/security/tls") == "FAIL"
    assert "AGENTWORKER_TLS_CA" in run.stdout


def test_expected_failure_turns_a_failure_into_xfail(report_dir: Path, tmp_path: Path) -> None:
    expected = tmp_path / "expected.toml"
    expected.write_text(
        '[[expected_failures]]\ncase = "worker/handshake/client-id-on-every-call"\n'
        'reason = "no client-id on unary calls"\n'
    )
    run = run_cli(
        [
            "worker",
            "--case",
            "worker/handshake/client-id-on-every-call",
            "--expected-failures",
            str(expected),
            "--",
            *broken_worker_command("no-client-id-unary"),
        ],
        report_dir,
        scale="1",
    )
    assert run.returncode == 0, run.stdout
    assert run.status("worker/handshake/client-id-on-every-call") == "XFAIL"


def _wait_listening(port: int, process: subprocess.Popen[str], within: float = 30.0) -> None:
    """Waits until the harness accepts connections on ``port`` (it starts in attach mode)."""
    deadline = time.monotonic() + within
    while True:
        assert process.poll() is None, "the harness exited before it listened"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        assert time.monotonic() < deadline, f"nothing listens on port {port} after {within} s"
        time.sleep(0.05)


def test_attach_mode_waits_for_the_worker(report_dir: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    argv = [
        sys.executable,
        "-m",
        "conformance",
        "worker",
        "--listen",
        address,
        "--case",
        "worker/rpc/ping/*",
        "--case",
        "worker/lifecycle/sigterm-drains",
        "--report-dir",
        str(report_dir),
    ]
    harness = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    worker = None
    try:
        _wait_listening(port, harness)
        env = dict(os.environ, AGENTWORKER_HOST_ADDRESS=address)
        worker = subprocess.Popen(broken_worker_command(), env=env, cwd=ROOT)
        stdout, stderr = harness.communicate(timeout=60)
    finally:
        harness.kill()
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=10)
    assert harness.returncode == 0, stdout + stderr
    assert "2 passed, 0 failed, 1 skipped" in stdout
    assert "sigterm-drains" in stdout
    assert "not applicable" in stdout


def test_run_worker_suite_in_process(
    conformance_worker_suite: Callable[..., SuiteResult],
) -> None:
    result = conformance_worker_suite(
        command=broken_worker_command(), cases=["worker/events/*"], timeout_scale=2.0
    )
    assert len(result.results) == len(select_worker_cases(["worker/events/*"]))
    assert all(r.status is Status.PASS for r in result.results)
    with pytest.raises(ValueError, match="exactly one"):
        conformance_worker_suite(cases=["worker/events/*"])
