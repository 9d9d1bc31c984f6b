"""Supervision: keeps one connection to a host open, reconnecting and failing over.

With several host addresses (nodes of one cluster), a lost connection is re-established with
the next address first, then the others in turn (AWP-CONN-020: backoff with jitter between
attempts); `on_connected` re-registers the worker's types and subscriptions each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import grpc

from agentworker.v1 import agentworker_pb2
from reference_worker._connection import Connection, ConnectionSettings, HostConnectionError
from reference_worker._errors import TargetUnavailableError

__all__ = ["Supervisor"]

_log = logging.getLogger("reference_worker")

BACKOFF_FIRST = 0.2
BACKOFF_CAP = 30.0

FrameCallback = Callable[[Connection, agentworker_pb2.OpenChannelResponse], Awaitable[None]]
ControlCallback = Callable[
    [Connection, agentworker_pb2.OpenControlChannelResponse], Awaitable[None]
]
_RETRYABLE = (HostConnectionError, grpc.aio.AioRpcError, OSError)


class Supervisor:
    """Owns the current Connection; reconnects after a loss when `reconnect` is on."""

    def __init__(
        self,
        addresses: Sequence[str],
        settings: Callable[[str], ConnectionSettings],
        *,
        on_frame: FrameCallback,
        on_control: ControlCallback,
        on_connected: Callable[[Connection], Awaitable[None]],
        on_lost: Callable[[Connection], None],
        reconnect: bool,
    ) -> None:
        if not addresses:
            raise ValueError("at least one host address is needed")
        self.addresses = list(addresses)
        self._settings = settings
        self._on_frame = on_frame
        self._on_control = on_control
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._reconnect = reconnect
        self._index = 0
        self.conn: Connection | None = None
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._generation = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.connections = 0

    @property
    def address(self) -> str:
        """The address of the current (or last) connection."""
        return self.addresses[self._index]

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Connects to the first address that accepts; raises the last refusal otherwise."""
        self._stopping.clear()
        error: BaseException | None = None
        for offset in range(len(self.addresses)):
            index = (self._index + offset) % len(self.addresses)
            try:
                await self._connect(index)
                break
            except _RETRYABLE as exc:
                error = exc
                _log.info("cannot connect to %s: %s", self.addresses[index], exc)
        else:
            assert error is not None
            raise error
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="supervisor")

    async def _connect(self, index: int) -> None:
        address = self.addresses[index]
        conn = Connection(self._settings(address))
        try:
            await conn.open(
                lambda frame: self._on_frame(conn, frame),
                lambda frame: self._on_control(conn, frame),
            )
            await self._on_connected(conn)  # AWP-CONN-007: registrations after the channel
        except BaseException:
            await conn.abort()
            raise
        self._index = index
        self.conn = conn
        self.connections += 1
        self.ready.set()
        async with self._generation:
            self._generation.notify_all()
        _log.info(
            "connected to %s (%s)", address, "v1" if conn.welcome is not None else "legacy host"
        )

    async def wait_connected(self, connections: int, timeout: float) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._generation:
            await self._generation.wait_for(
                lambda: self.connections >= connections and self.ready.is_set()
            )

    async def connection(self, limit: float) -> Connection:
        """The open connection, waiting up to `limit` seconds for a reconnect."""
        if not self.ready.is_set():
            if not self.running:
                raise TargetUnavailableError("worker is not connected")
            try:
                async with asyncio.timeout(limit):
                    await self.ready.wait()
            except TimeoutError:
                raise TargetUnavailableError("not connected to the host") from None
        conn = self.conn
        if conn is None or conn.writer is None or conn.writer.closed:
            raise TargetUnavailableError("not connected to the host")
        return conn

    async def _supervise(self) -> None:
        while True:
            conn = self.conn
            if conn is None:
                return
            await conn.lost.wait()
            self.ready.clear()
            self._on_lost(conn)
            if self._stopping.is_set():
                return
            _log.warning("lost the data channel to %s", self.address)
            await conn.abort()
            if not self._reconnect:
                self.conn = None
                return
            if not await self._reconnect_loop():
                return

    async def _reconnect_loop(self) -> bool:
        """Backoff with jitter (AWP-CONN-020), trying the next address first (failover)."""
        delay = BACKOFF_FIRST
        index = self._index
        attempts = 0
        while not self._stopping.is_set():
            index = (index + 1) % len(self.addresses)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(random.uniform(delay / 2, delay)):
                    await self._stopping.wait()
                    return False
            try:
                await self._connect(index)
                return True
            except _RETRYABLE as exc:  # ALREADY_EXISTS included (AWP-CONN-021)
                _log.info("reconnect to %s failed (%s); retrying", self.addresses[index], exc)
            except Exception:
                _log.exception("reconnect to %s failed unexpectedly", self.addresses[index])
            attempts += 1
            if attempts % len(self.addresses) == 0:  # a whole round failed: back off further
                delay = min(delay * 2, BACKOFF_CAP)
        return False

    async def stop(self, grace: float) -> None:
        """Half-closes the current connection and ends supervision."""
        self._stopping.set()
        conn = self.conn
        if conn is not None:
            await conn.close(grace)
            self.ready.clear()
            self._on_lost(conn)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.conn = None
