"""The command line: list, explain, argument errors, NO RESULT."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

from conformance import HOST_CASES, WORKER_CASES
from conformance._cli import main
from conformance._subject import free_port
from tests.conformance.conftest import run_cli, tiny_host_command


def _main(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out), out.getvalue()


def test_list_prints_every_case() -> None:
    code, out = _main("list")
    assert code == 0
    assert out.splitlines()[-1] == f"{len(HOST_CASES.all()) + len(WORKER_CASES.all())} cases"
    assert "host/rpc/correlation/colliding-request-ids" in out
    assert "worker/call/concurrent-out-of-order" in out


def test_list_one_suite() -> None:
    code, out = _main("list", "--suite", "worker")
    assert code == 0
    assert out.splitlines()[-1] == f"{len(WORKER_CASES.all())} cases"
    assert "host/" not in out


def test_explain_worker_case() -> None:
    code, out = _main("explain", "worker/call/concurrent-out-of-order")
    assert code == 0
    assert "AWP-RPC-001 (worker, MUST)" in out
    assert "Procedure:" in out


def test_worker_needs_exactly_one_subject() -> None:
    assert _main("worker")[0] == 2
    assert _main("worker", "--listen", "127.0.0.1:1", "--", "true")[0] == 2


def test_worker_that_exits_at_once_is_no_result() -> None:
    code, out = _main("worker", "--timeout-scale", "0.5", "--", "false")
    assert code == 2
    assert out.splitlines()[-1].startswith("NO RESULT: cannot reach the subject")
    assert "exited with status 1 before connecting" in out


def test_list_filters() -> None:
    code, out = _main("list", "--requirement", "AWP-RPC-004", "--level", "core")
    assert code == 0
    assert "host/rpc/correlation/colliding-request-ids" in out
    assert "host/publish/fan-out-exactness" not in out


def test_explain_shows_requirements_and_procedure() -> None:
    code, out = _main("explain", "host/rpc/correlation/colliding-request-ids")
    assert code == 0
    assert "AWP-RPC-004 (host, MUST)" in out
    assert "Procedure:" in out
    assert "Asserts:" in out


def test_explain_unknown_case() -> None:
    assert _main("explain", "host/nope")[0] == 2


def test_host_needs_exactly_one_subject() -> None:
    assert _main("host")[0] == 2
    assert _main("host", "--address", "127.0.0.1:1", "--", "true")[0] == 2


def test_unreachable_address_is_no_result() -> None:
    address = f"127.0.0.1:{free_port()}"
    code, out = _main("host", "--address", address, "--timeout-scale", "0.2")
    assert code == 2
    assert out.splitlines()[-1].startswith("NO RESULT: cannot reach the subject")


def test_subject_that_exits_at_once_is_no_result() -> None:
    code, out = _main("host", "--", "false")
    assert code == 2
    assert "NO RESULT" in out.splitlines()[-1]


def test_no_selected_case_is_no_result(report_dir: Path) -> None:
    run = run_cli(["host", "--case", "host/none/*", "--", *tiny_host_command()], report_dir)
    assert run.returncode == 2
    assert run.stdout.splitlines()[-2:] == [
        "0 passed, 0 failed, 0 skipped",
        "NO RESULT: no case ran",
    ]
    assert run.report is not None
    assert run.report["summary"]["no_result"] == "no case ran"


def test_expected_failures_and_policy_from_the_command_line(
    tmp_path: Path, report_dir: Path
) -> None:
    xf = tmp_path / "xf.toml"
    xf.write_text(
        "[[expected_failures]]\n"
        'case = "host/rpc/unknown-target"\n'
        'reason = "the tiny host without deadlines never answers"\n'
        "[[expected_failures]]\n"
        'case = "host/rpc/routing"\n'
        'reason = "stale: it passes"\n'
    )
    args = ["host", "--case", "host/rpc/unknown-target", "--case", "host/rpc/routing"]
    run = run_cli(
        [*args, "--expected-failures", str(xf), "--", *tiny_host_command("no-deadlines")],
        report_dir,
        scale="1",
    )
    assert run.returncode == 1
    assert run.status("host/rpc/unknown-target") == "XFAIL"
    assert run.status("host/rpc/routing") == "XPASS"
    assert run.stdout.splitlines()[-1] == "0 passed, 1 failed, 1 skipped"


def test_attach_mode_and_listen_address_from_the_environment(report_dir: Path) -> None:
    """The tiny host, given no --address, listens where AGENTWORKER_LISTEN_ADDRESS says;
    the harness attaches to it."""
    address = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, AGENTWORKER_LISTEN_ADDRESS=address)
    command = [arg for arg in tiny_host_command() if arg not in ("--address", "{address}")]
    host = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run = run_cli(
            [
                "host",
                "--address",
                address,
                "--case",
                "host/rpc/routing",
                "--case",
                "host/publish/*",
                "--case",
                "host/lifecycle/drain",
            ],
            report_dir,
        )
    finally:
        host.terminate()
        host.wait(timeout=10)
    assert run.returncode == 0, run.stdout
    assert run.report is not None
    assert run.report["subject"] == f"attached to {address}"
    assert run.status("host/rpc/routing") == "PASS"
