"""The host suite fails deliberately broken hosts on the right case, and passes the same host
without the defect."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.conftest import run_cli, tiny_host_command

TARGETED = {
    "correlate-by-request-id": {
        "host/rpc/correlation/colliding-request-ids": "AWP-RPC-004",
        "host/rpc/response-from-wrong-connection": "AWP-RPC-005",
    },
    "fanout-to-all": {"host/publish/fan-out-exactness": "AWP-PUB-010"},
    "route-by-type": {"host/publish/foreign-subscription": "AWP-SUB-013"},
    "batch-any-size": {"host/batching/frame-count-limits": "AWP-BAT-005"},
    "unbounded-queues": {"host/flow/overloaded": "AWP-FLOW-002"},
    "no-drain": {"host/lifecycle/drain": "AWP-CONN-015"},
    "no-deadlines": {
        "host/rpc/unknown-target": "AWP-RPC-003",
        "host/rpc/deadline/expires": "AWP-RPC-010",
    },
}


def test_tiny_host_without_defects_passes_every_core_case(report_dir: Path) -> None:
    # host/flow/slow-consumer (about 10 s) is left out here; the reference host run covers it.
    run = run_cli(["host", "--case", "host/[!f]*", "--", *tiny_host_command()], report_dir)
    assert run.returncode == 0, run.stdout
    assert run.report is not None
    # Cluster cases need several node addresses; a single host skips them as not applicable.
    core = [
        c
        for c in run.report["cases"]
        if c["level"] == "core" and not c["id"].startswith("host/cluster/")
    ]
    assert core
    assert all(c["status"] == "PASS" for c in core), run.stdout
    # The tiny host serves no reflection: a SHOULD failure, which --require core tolerates.
    assert run.failed_ids() == {"host/observability/reflection"}
    # The tiny host does not announce shared agent types, and the run gives no host commands
    # for the security mechanisms: those cases are not claimed.
    skipped = {c["id"]: c["skip_reason"] for c in run.report["cases"] if c["status"] == "SKIP"}
    cluster_cases = {k: skipped.pop(k) for k in list(skipped) if k.startswith("host/cluster/")}
    assert set(cluster_cases.values()) == {"not applicable"}
    assert skipped == dict.fromkeys(
        [
            "host/security/bearer-token",
            "host/security/mutual-tls",
            "host/security/tls",
            "host/security/tls-version",
            "host/security/token-agent-types",
            "host/sharing/rendezvous-hashing",
            "host/sharing/stable-routing",
        ],
        "not claimed",
    )
    passed = len(run.report["cases"]) - 1 - len(skipped) - len(cluster_cases)
    assert run.stdout.splitlines()[-1] == (
        f"{passed} passed, 1 failed, {7 + len(cluster_cases)} skipped"
    )


@pytest.mark.parametrize("defect", sorted(TARGETED))
def test_defect_fails_its_case(defect: str, report_dir: Path) -> None:
    cases = TARGETED[defect]
    args = ["host"]
    for case_id in [*cases, "host/rpc/routing"]:
        args += ["--case", case_id]
    # Unscaled: the targeted cases fail by waiting out their deadlines.
    run = run_cli([*args, "--", *tiny_host_command(defect)], report_dir, scale="1")
    assert run.returncode == 1, run.stdout
    assert run.failed_ids() == set(cases), run.stdout
    assert run.status("host/rpc/routing") == "PASS"
    assert run.report is not None
    for case in run.report["cases"]:
        if case["id"] in cases:
            # The requirement is failed by a step of its own, not by the case's status.
            verdicts = {r["id"]: r for r in case["requirements"]}
            assert verdicts[cases[case["id"]]]["verdict"] == "fail", case["requirements"]
            assert verdicts[cases[case["id"]]]["decided_by"] == "step", case["requirements"]
            assert case["trace"], "a failure carries its wire trace"
            assert case["replay"].startswith("python -m conformance host ")
            assert f"--case {case['id']}" in case["replay"]
    assert "replay: python -m conformance host" in run.stdout
    assert "wire trace:" in run.stdout
    # What the host logged during the failed case is part of its trace.
    assert "host-log" in run.stdout
    assert "tiny-host: data channel opened by" in run.stdout


def test_crash_is_attributed_to_the_running_case_and_the_host_restarts(report_dir: Path) -> None:
    command = tiny_host_command("crash-on-unknown-frame")
    run = run_cli(
        [
            "host",
            "--case",
            "host/connection/unknown-frame-case",
            "--case",
            "host/rpc/routing",
            "--",
            *command,
        ],
        report_dir,
    )
    assert run.returncode == 1, run.stdout
    assert run.failed_ids() == {"host/connection/unknown-frame-case"}
    assert run.status("host/rpc/routing") == "PASS"
    assert "the subject exited with status 3 during this case" in run.stdout
