"""The local cluster's control directory: ``python -m reference_host.cluster.fault`` kills a
node and starts it again on its address; a bad request fails with a reason; the launcher
stops a restarted node when it stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reference_host.cluster.nats_server import NatsServer
from tests.cluster.conftest import LEASE_MS

_START_S = 60.0


def _fault(action: str, address: str, control: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_host.cluster.fault", action, address,
         "--control-dir", str(control)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _pids(control: Path) -> dict[str, int]:
    """Return each node's pid by address, as the launcher published them."""
    nodes = json.loads((control / "nodes.json").read_text())
    return {node["address"]: node["pid"] for node in nodes}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child the launcher has not reaped yet is a zombie: not alive.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _serves(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def launcher(
    nats_server: NatsServer, cluster_name: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    """A 2-node local cluster with a control directory: (process, addresses, directory)."""
    control = tmp_path / "control"
    process = subprocess.Popen(
        [sys.executable, "-m", "reference_host.cluster.local", "--nodes", "2",
         "--nats", nats_server.url, "--name", cluster_name, "--lease-ms", str(LEASE_MS),
         "--control-dir", str(control)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + _START_S
        addresses: list[str] = []
        for line in process.stdout:  # the launcher prints its addresses once every node serves
            if line.startswith("addresses "):
                addresses = line.split()[1].split(",")
                break
            assert time.monotonic() < deadline, "the cluster did not start"
        assert addresses, "the launcher ended before announcing its nodes"
        yield process, addresses, control
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        if process.stdout is not None:
            process.stdout.close()


def test_kill_then_start_a_node_on_its_address(
    launcher: tuple[subprocess.Popen[str], list[str], Path],
) -> None:
    process, addresses, control = launcher
    address = addresses[-1]
    before = _pids(control)[address]
    killed = _fault("kill", address, control)
    assert killed.returncode == 0, killed.stderr
    assert not _alive(before)
    assert not _serves(address)
    again = _fault("kill", address, control)
    assert again.returncode == 1
    assert "not running" in again.stderr
    started = _fault("start", address, control)
    assert started.returncode == 0, started.stderr
    after = _pids(control)[address]
    assert after != before
    assert _alive(after)
    assert _serves(address)
    # The launcher stops the restarted node with the others.
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert not _alive(after)


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(response.status)


def _await_health(address: str, status: int) -> None:
    deadline = time.monotonic() + _START_S
    while _health(address) != status:
        assert time.monotonic() < deadline, f"{address} never reported {status}"
        time.sleep(0.05)


@pytest.mark.requirement("AWP-CLU-012", "AWP-CLU-017")
def test_cut_then_restore_a_nodes_connection_to_nats(
    launcher: tuple[subprocess.Popen[str], list[str], Path],
) -> None:
    _, addresses, control = launcher
    address = addresses[-1]
    cut = _fault("cut", address, control)
    assert cut.returncode == 0, cut.stderr
    # The node's lease renewals stop getting through: it stops serving (AWP-CLU-017).
    _await_health(address, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert _health(addresses[0]) == health_pb2.HealthCheckResponse.SERVING
    restored = _fault("restore", address, control)
    assert restored.returncode == 0, restored.stderr
    _await_health(address, health_pb2.HealthCheckResponse.SERVING)


def test_a_bad_request_fails_with_its_reason(
    launcher: tuple[subprocess.Popen[str], list[str], Path],
) -> None:
    _, addresses, control = launcher
    unknown = _fault("kill", "127.0.0.1:1", control)
    assert unknown.returncode == 1
    assert "no node at 127.0.0.1:1" in unknown.stderr
    running = _fault("start", addresses[0], control)
    assert running.returncode == 1
    assert "already running" in running.stderr
    usage = _fault("pause", addresses[0], control)
    assert usage.returncode == 2


def test_no_launcher_is_a_clear_error(tmp_path: Path) -> None:
    missing = _fault("kill", "127.0.0.1:1", tmp_path / "absent")
    assert missing.returncode == 1
    assert "no control directory" in missing.stderr
