"""Host nodes as separate processes (``python -m reference_host --cluster``), to kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Final

from tests.host._raw import TIMEOUT_S

_STARTUP_S: Final = 60.0


class NodeProcess:
    """One host node process; ``port`` is known once ``start()`` returned."""

    def __init__(self, nats_url: str, cluster: str, node_id: str, lease_ms: int) -> None:
        self._args = [
            sys.executable, "-m", "reference_host",
            "--address", "127.0.0.1:0",
            "--cluster", nats_url,
            "--cluster-name", cluster,
            "--node-id", node_id,
            "--cluster-lease-ms", str(lease_ms),
            "--log-format", "json",
        ]  # fmt: skip
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[dict[str, object]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> NodeProcess:
        """Start the node and wait until it serves."""
        self.process = await asyncio.create_subprocess_exec(
            *self._args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stderr is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STARTUP_S
        while not self.port:
            line = await asyncio.wait_for(
                self.process.stderr.readline(), max(0.1, deadline - loop.time())
            )
            if not line:
                raise RuntimeError(f"node exited before serving: {self.log}")
            self._record(line)
        self._reader = asyncio.create_task(self._read())
        return self

    def _record(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            return
        if isinstance(entry, dict):
            self.log.append(entry)
            if entry.get("event") == "host.started":
                self.port = int(entry["port"])

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self._record(line)

    def kill(self) -> None:
        """Kill the node with SIGKILL: no goodbye to the cluster."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        """Stop the node (SIGTERM) if it still runs, and reap it."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.terminate()
        await asyncio.wait_for(self.process.wait(), TIMEOUT_S * 3)
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=TIMEOUT_S)
