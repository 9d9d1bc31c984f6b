"""The NATS server the project's scripts start (reference_host/cluster/nats_server.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_host.cluster.nats_server import NatsServer


def _environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw if entry)
    return {name: value for name, _, value in pairs}


def test_the_server_runs_on_one_go_processor_by_default() -> None:
    with NatsServer() as server:
        assert server.pid is not None
        assert _environment(server.pid)["GOMAXPROCS"] == "1"


def test_an_operators_gomaxprocs_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOMAXPROCS", "2")
    with NatsServer() as server:
        assert server.pid is not None
        assert _environment(server.pid)["GOMAXPROCS"] == "2"
    with NatsServer(max_procs=None) as server:
        assert server.pid is not None
        assert _environment(server.pid)["GOMAXPROCS"] == "2"
