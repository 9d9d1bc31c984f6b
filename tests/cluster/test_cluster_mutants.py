"""The host suite catches a broken cluster: for each cluster MUST its cases cite (AWP-CLU-001,
-005, -006), a 2-node cluster whose nodes break it fails a case citing that requirement.

The unmodified cluster passes the same cases: test_conformance.py runs them against 2
unmodified nodes, and scripts/conformance runs the whole host suite against 3. The mutation
matrix (tests/conformance/mutants) starts one host process per mutant, so these mutants run
here; its table lists them with the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_host.cluster.local import LocalCluster
from reference_host.cluster.nats_server import NatsServer
from tests.cluster._cluster_mutants import BROKEN, CLUSTER_MUTANTS
from tests.conformance.mutants._verdicts import caught_by


@pytest.fixture
def broken_clusters(
    nats_server: NatsServer, cluster_name: str
) -> Iterator[dict[str, LocalCluster]]:
    """Per mutant, two node processes of one cluster, both running that mutant. The clusters
    start side by side: a node spends its start-up importing, not waiting for the others."""
    clusters = {
        mutant: LocalCluster(2, nats_url=nats_server.url, name=f"{cluster_name}-{index}")
        for index, mutant in enumerate(sorted(BROKEN))
    }
    nodes = [(mutant, node) for mutant, cluster in clusters.items() for node in cluster.nodes]
    try:
        for mutant, node in nodes:
            # The node command is ``python -m reference_host ARGS``: run the mutant's wrapper.
            assert node._args[1:3] == ["-m", "reference_host"]
            node._args[2:3] = ["tests.cluster._broken_node", mutant]
            node.start(None)
        deadline = time.monotonic() + 120
        for _, node in nodes:
            node.wait_serving(deadline)
        yield clusters
    finally:
        for cluster in clusters.values():
            cluster.stop()


@pytest.mark.slow
@pytest.mark.requirement("AWP-CLU-001", "AWP-CLU-005", "AWP-CLU-006")
def test_host_suite_fails_a_cluster_that_breaks_a_cluster_must(
    broken_clusters: dict[str, LocalCluster], tmp_path: Path
) -> None:
    runs: dict[str, subprocess.Popen[str]] = {}
    for mutant, cluster in broken_clusters.items():
        addresses = [arg for address in cluster.addresses for arg in ("--address", address)]
        command = [sys.executable, "-m", "conformance", "host", *addresses]
        command += ["--case", "host/cluster/*", "--timeout-scale", "2"]
        command += ["--report-dir", str(tmp_path / mutant)]
        runs[mutant] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    try:
        outputs = {mutant: run.communicate(timeout=300)[0] for mutant, run in runs.items()}
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    for mutant, run in runs.items():
        requirement, output = BROKEN[mutant], outputs[mutant]
        assert run.returncode != 0, output[-4000:]
        report = json.loads((tmp_path / mutant / "report.json").read_text())
        assert caught_by(report, requirement), (
            f"{mutant}: no case failed on {requirement}\n{output}"
        )
        # Caught where the mutation matrix's table says (conformance/MUTATION_MATRIX.md).
        failed = {case["id"] for case in report["cases"] if case["status"] != "PASS"}
        expected = next(m.catches for m in CLUSTER_MUTANTS if m.name == mutant)
        assert set(expected) <= failed, f"{mutant}: {expected} did not fail\n{output}"
        # The mutant breaks that requirement alone: every case that fails cites it.
        for case in report["cases"]:
            if case["status"] != "PASS":
                cited = {entry["id"] for entry in case["requirements"]}
                assert requirement in cited, f"{mutant}: {case['id']} failed too\n{output}"
