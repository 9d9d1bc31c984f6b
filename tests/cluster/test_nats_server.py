"""The NATS server the project's scripts start (reference_host/cluster/nats_server.py)."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import nats
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


@pytest.mark.asyncio
async def test_the_command_serves_jetstream_until_sigterm(tmp_path: Path) -> None:
    """``python -m reference_host.cluster.nats_server``, as README "Running a cluster" starts it:
    it prints its URL, serves JetStream (the nodes' key-value bucket), and stops on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reference_host.cluster.nats_server", "--store-dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        assert url.startswith("nats://127.0.0.1:"), url
        client = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
        try:
            bucket = await client.jetstream().create_key_value(bucket="probe")
            await bucket.put("k", b"v")
            assert (await bucket.get("k")).value == b"v"
        finally:
            await client.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        port = int(url.rpartition(":")[2])
        with pytest.raises(ConnectionRefusedError):  # the server went with the command
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
