"""The conformance host suite against a 3-node cluster, its workers spread over the nodes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_host.cluster.local import LocalCluster
from reference_host.cluster.nats_server import NatsServer


@pytest.fixture
def cluster(nats_server: NatsServer, cluster_name: str) -> Iterator[LocalCluster]:
    """Three node processes of one cluster on the module's NATS server."""
    local = LocalCluster(3, nats_url=nats_server.url, name=cluster_name)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.mark.slow
@pytest.mark.requirement("AWP-CLU-001", "AWP-CLU-005", "AWP-CLU-006", "AWP-CLU-014")
def test_host_suite_passes_against_a_three_node_cluster(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    addresses = [arg for address in cluster.addresses for arg in ("--address", address)]
    run = subprocess.run(
        [sys.executable, "-m", "conformance", "host", *addresses, "--report-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    statuses = {case["id"]: case["status"] for case in report["cases"]}
    assert set(statuses.values()) <= {"PASS", "SKIP"}, run.stdout[-4000:]
    assert statuses["host/cluster/read-your-writes"] == "PASS"
    assert statuses["host/cluster/client-id-unique"] == "PASS"
    assert report["summary"]["passed"] >= 40


@pytest.mark.requirement("AWP-CLU-005", "AWP-CLU-006")
def test_spawned_cluster_announces_its_nodes_to_the_harness(
    nats_server: NatsServer, cluster_name: str, tmp_path: Path
) -> None:
    command = [
        sys.executable, "-m", "reference_host.cluster.local", "--nodes", "2",
        "--nats", nats_server.url, "--name", cluster_name, "--first-address", "{address}",
    ]  # fmt: skip
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
    assert len(report["cases"]) == 2
