"""The host suite catches a broken cluster: for each cluster MUST its cases cite (AWP-CLU-001,
-005, -006, -009 to -012, -017, -018), a cluster whose nodes break it fails a case citing
that requirement. The node-fault mutants run as clusters the suite kills a node of, or cuts
one off the shared state (--node-fault-command through the launcher's control directory).

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
from tests.cluster._cluster_mutants import BROKEN, CLUSTER_MUTANTS, ClusterMutant
from tests.conformance.mutants._verdicts import caught_by

# The mutants whose clusters the suite kills a node of, and those it only reads.
_FAULTED = [m for m in CLUSTER_MUTANTS if m.node_fault]
_PLAIN = [m for m in CLUSTER_MUTANTS if not m.node_fault]
# The lease of the node-loss mutants' clusters: nine nodes start side by side here, so a little
# longer than the other cluster tests' (the case's bounds grow with it).
_LEASE_MS = 2_000


@pytest.fixture
def broken_clusters(
    nats_server: NatsServer, cluster_name: str
) -> Iterator[dict[str, LocalCluster]]:
    """Per mutant, two node processes of one cluster, both running that mutant. The clusters
    start side by side: a node spends its start-up importing, not waiting for the others."""
    clusters = {
        mutant: LocalCluster(2, nats_url=nats_server.url, name=f"{cluster_name}-{index}")
        for index, mutant in enumerate(sorted(m.name for m in _PLAIN))
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
    commands: dict[str, list[str]] = {}
    for mutant, cluster in broken_clusters.items():
        addresses = [arg for address in cluster.addresses for arg in ("--address", address)]
        command = [sys.executable, "-m", "conformance", "host", *addresses]
        command += ["--case", "host/cluster/*", "--timeout-scale", "2"]
        commands[mutant] = [*command, "--report-dir", str(tmp_path / mutant)]
    _run_and_check(commands, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case_id", "requirements"),
    [
        ("host/cluster/node-loss", ("AWP-CLU-009", "AWP-CLU-010", "AWP-CLU-011")),
        ("host/cluster/cut-off", ("AWP-CLU-012", "AWP-CLU-017", "AWP-CLU-018")),
    ],
)
@pytest.mark.requirement(
    "AWP-CLU-009", "AWP-CLU-010", "AWP-CLU-011", "AWP-CLU-012", "AWP-CLU-017", "AWP-CLU-018"
)
def test_host_suite_fails_a_cluster_that_breaks_a_node_fault_must(
    case_id: str,
    requirements: tuple[str, ...],
    nats_server: NatsServer,
    cluster_name: str,
    tmp_path: Path,
) -> None:
    # The suite spawns each broken cluster (the launcher, whose nodes all run the mutant)
    # and kills or cuts off its last node through the launcher's control directory.
    mutants = [m for m in _FAULTED if case_id in m.catches]
    assert {m.requirement for m in mutants} == set(requirements)
    commands = {m.name: _faulted_run(m, nats_server, f"{cluster_name}-{i}", tmp_path)
                for i, m in enumerate(mutants)}  # fmt: skip
    _run_and_check(commands, tmp_path)
    # Each breaks one requirement: no step deciding another of the case's fails.
    for m in mutants:
        report = json.loads((tmp_path / m.name / "report.json").read_text())
        (case,) = [c for c in report["cases"] if c["id"] == case_id]
        failed = {entry["id"] for entry in case["requirements"] if entry["verdict"] == "fail"}
        assert failed == {m.requirement}, f"{m.name}: {case['requirements']}"


def _faulted_run(m: ClusterMutant, nats: NatsServer, name: str, tmp_path: Path) -> list[str]:
    """Return the suite's command line for a spawned cluster of mutant ``m``."""
    control = tmp_path / f"{m.name}-control"
    fault = f"{sys.executable} -m reference_host.cluster.fault {{action}} {{address}} "
    fault += f"--control-dir {control}"
    command = [sys.executable, "-m", "conformance", "host", "--case", "host/cluster/*"]
    command += ["--timeout-scale", "2", "--report-dir", str(tmp_path / m.name)]
    command += ["--node-fault-command", fault, "--node-lease-ms", str(_LEASE_MS)]
    return [
        *command, "--", sys.executable, "-m", "tests.cluster._broken_cluster", m.name,
        "--nodes", str(m.nodes), "--nats", nats.url, "--name", name,
        "--lease-ms", str(_LEASE_MS), "--control-dir", str(control), "--first-address", "{address}",
    ]  # fmt: skip


def _run_and_check(commands: dict[str, list[str]], tmp_path: Path) -> None:
    """Run the suites side by side; each must fail its mutant where the table says."""
    runs = {
        mutant: subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for mutant, command in commands.items()
    }
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
        failed = {case["id"] for case in report["cases"] if case["status"] not in ("PASS", "SKIP")}
        expected = next(m.catches for m in CLUSTER_MUTANTS if m.name == mutant)
        assert set(expected) <= failed, f"{mutant}: {expected} did not fail\n{output}"
        # The mutant breaks that requirement alone: every case that fails cites it.
        for case in report["cases"]:
            if case["status"] not in ("PASS", "SKIP"):
                cited = {entry["id"] for entry in case["requirements"]}
                assert requirement in cited, f"{mutant}: {case['id']} failed too\n{output}"
