"""The host suite's cluster cases against a cluster the harness spawns. The full host suite
runs against a 3-node cluster in scripts/conformance (the CI's conformance step)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reference_host.cluster.nats_server import NatsServer
from tests.cluster.conftest import LEASE_MS


@pytest.mark.requirement(
    "AWP-CLU-005",
    "AWP-CLU-006",
    "AWP-CLU-009",
    "AWP-CLU-010",
    "AWP-CLU-011",
    "AWP-CLU-012",
    "AWP-CLU-017",
    "AWP-CLU-018",
)
def test_spawned_cluster_announces_its_nodes_to_the_harness(
    nats_server: NatsServer, cluster_name: str, tmp_path: Path
) -> None:
    # The harness kills the cluster's last node and starts it again, and cuts it off the
    # shared state and restores it, through the launcher.
    control = tmp_path / "control"
    command = [
        sys.executable, "-m", "reference_host.cluster.local", "--nodes", "2",
        "--nats", nats_server.url, "--name", cluster_name, "--first-address", "{address}",
        "--lease-ms", str(LEASE_MS), "--control-dir", str(control),
    ]  # fmt: skip
    fault = f"{sys.executable} -m reference_host.cluster.fault {{action}} {{address}} "
    fault += f"--control-dir {control}"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "host",
            "--case",
            "host/cluster/*",
            "--timeout-scale",
            "3",
            "--node-fault-command",
            fault,
            "--node-lease-ms",
            str(LEASE_MS),
            "--report-dir",
            str(tmp_path),
            "--",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert {case["status"] for case in report["cases"]} == {"PASS"}, run.stdout
    assert len(report["cases"]) == 4
