"""The TLS, mutual-TLS and bearer-token host cases: not claimed without their host commands,
passed by the tiny host configured for each mechanism, and failed by each broken variant on
the requirement it breaks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cli import main
from conformance._secure_host import command_line, secure_commands
from tests.conformance.conftest import run_cli, tiny_host_command

SECURITY_CASES = {
    "host/security/tls": "AWP-SEC-001",
    "host/security/tls-version": "AWP-SEC-001",
    "host/security/mutual-tls": "AWP-SEC-003",
    "host/security/bearer-token": "AWP-SEC-005",
    "host/security/token-agent-types": "AWP-SEC-006",
}
# The defect that breaks each token or mutual-TLS requirement, and the case that must catch it.
DEFECTS = {
    "any-token": "host/security/bearer-token",
    "token-any-client": "host/security/bearer-token",
    "token-any-type": "host/security/token-agent-types",
    "optional-client-cert": "host/security/mutual-tls",
}


def security_options(*defects: str) -> list[str]:
    """Return the three host-command options for the tiny host with ``defects``."""
    tiny = " ".join(tiny_host_command(*defects))
    return [
        "--tls-command",
        f"{tiny} --tls-cert {{tls_cert}} --tls-key {{tls_key}}",
        "--mtls-command",
        f"{tiny} --tls-cert {{tls_cert}} --tls-key {{tls_key}} --client-ca {{client_ca}}",
        "--token-command",
        f"{tiny} --tokens {{tokens}}",
    ]


def test_without_commands_the_cases_are_not_claimed(report_dir: Path) -> None:
    args = ["host", "--case", "host/security/*", "--case", "host/rpc/routing"]
    run = run_cli([*args, "--", *tiny_host_command()], report_dir)
    assert run.returncode == 0, run.stdout
    assert run.report is not None
    for case in run.report["cases"]:
        if case["id"] in SECURITY_CASES:
            assert (case["status"], case["skip_reason"]) == ("SKIP", "not claimed"), case
            assert "-command given" in case["message"]
    assert run.stdout.splitlines()[-1] == "1 passed, 0 failed, 5 skipped"


def test_tiny_host_passes_every_security_case(report_dir: Path) -> None:
    args = ["host", "--case", "host/security/*", *security_options()]
    run = run_cli([*args, "--", *tiny_host_command()], report_dir)
    assert run.returncode == 0, run.stdout
    assert run.report is not None
    assert {c["id"]: c["status"] for c in run.report["cases"]} == dict.fromkeys(
        SECURITY_CASES, "PASS"
    )


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defect_fails_its_security_case(defect: str, report_dir: Path) -> None:
    args = ["host", "--case", "host/security/*", *security_options(defect)]
    run = run_cli([*args, "--", *tiny_host_command()], report_dir)
    assert run.returncode == 1, run.stdout
    case_id = DEFECTS[defect]
    assert run.failed_ids() == {case_id}, run.stdout
    assert run.report is not None
    failed = next(c for c in run.report["cases"] if c["id"] == case_id)
    verdicts = {r["id"]: r for r in failed["requirements"]}
    assert verdicts[SECURITY_CASES[case_id]]["verdict"] == "fail", failed["requirements"]
    assert verdicts[SECURITY_CASES[case_id]]["step"], "decided by a step of its own"
    option = "--mtls-command" if "mutual" in case_id else "--token-command"
    assert f"{option} '" in failed["replay"], "the replay repeats the host's command"
    assert "{tokens}" in failed["replay"] or "{client_ca}" in failed["replay"]


def test_host_that_does_not_start_fails_the_case(report_dir: Path) -> None:
    args = ["host", "--case", "host/security/tls", "--tls-command", "false {tls_cert}"]
    run = run_cli([*args, "--", *tiny_host_command()], report_dir)
    assert run.returncode == 1, run.stdout
    assert run.failed_ids() == {"host/security/tls"}
    assert "does not serve (AWP-CNF-020)" in run.stdout


def test_commands_are_split_by_shell_rules_and_replayed_readably() -> None:
    commands = secure_commands(tls="my-host --listen {address} --cert '{tls_cert}'")
    assert commands == {
        pb.CAPABILITY_TLS: ["my-host", "--listen", "{address}", "--cert", "{tls_cert}"]
    }
    assert (
        command_line(commands[pb.CAPABILITY_TLS]) == "my-host --listen {address} --cert {tls_cert}"
    )
    assert command_line(["a b", "{x}"]) == "'a b' {x}"


def test_empty_command_is_a_usage_error() -> None:
    out = io.StringIO()
    assert main(["host", "--tls-command", " ", "--address", "127.0.0.1:1"], out) == 2
    assert "--tls-command is empty" in out.getvalue()
