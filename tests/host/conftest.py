"""Fixtures for host tests: hosts on ephemeral loopback ports and raw worker connections."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
import pytest
import pytest_asyncio

from reference_host import Host, HostConfig
from tests.host._raw import V1_SERVICE, RawControl, RawWorker

# Short enough that FAILED_PRECONDITION tests stay fast, long enough for a loaded machine.
CHANNEL_WAIT_MS = 1_000


def pytest_configure(config: pytest.Config) -> None:
    # The project's pytest configuration registers this marker; register it here as well so
    # the host tests also run on their own.
    config.addinivalue_line("markers", "requirement(*ids): spec requirement IDs a test checks")


StartHost = Callable[..., Awaitable[Host]]


@pytest_asyncio.fixture
async def start_host() -> AsyncIterator[StartHost]:
    """Start hosts on 127.0.0.1:0; every host started is stopped at teardown."""
    hosts: list[Host] = []

    async def _start(config: HostConfig | None = None, **overrides: Any) -> Host:
        if config is None:
            overrides.setdefault("channel_wait_ms", CHANNEL_WAIT_MS)
            overrides.setdefault("metrics_log_interval_s", 0)
            config = HostConfig(**overrides)
        host = Host("127.0.0.1:0", config)
        await host.start()
        hosts.append(host)
        return host

    yield _start
    for host in hosts:
        await asyncio.wait_for(host.stop(grace=None), 30)


@pytest_asyncio.fixture
async def host(start_host: StartHost) -> Host:
    """A host with default settings (short channel wait)."""
    return await start_host()


@pytest_asyncio.fixture
async def channel(host: Host) -> AsyncIterator[grpc.aio.Channel]:
    """An insecure client channel to ``host``."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as chan:
        yield chan


ConnectWorker = Callable[..., Awaitable[RawWorker]]


@pytest_asyncio.fixture
async def connect(channel: grpc.aio.Channel) -> AsyncIterator[ConnectWorker]:
    """Open raw worker data channels to ``host``; closed at teardown."""
    workers: list[RawWorker] = []

    async def _connect(
        client_id: str,
        hello: Any = None,
        *,
        read: bool = True,
        service: str = V1_SERVICE,
        extra_metadata: Sequence[tuple[str, str]] = (),
        target: grpc.aio.Channel | None = None,
    ) -> RawWorker:
        worker = RawWorker(
            target if target is not None else channel,
            client_id,
            service=service,
            extra_metadata=extra_metadata,
        )
        workers.append(worker)
        return await worker.open(hello, read=read)

    yield _connect
    for worker in workers:
        with contextlib.suppress(Exception):
            await worker.close()


ConnectControl = Callable[..., Awaitable[RawControl]]


@pytest_asyncio.fixture
async def connect_control(channel: grpc.aio.Channel) -> AsyncIterator[ConnectControl]:
    """Open raw control channels to ``host``; closed at teardown."""
    controls: list[RawControl] = []

    async def _connect(client_id: str, *, service: str = V1_SERVICE) -> RawControl:
        control = RawControl(channel, client_id, service=service)
        controls.append(control)
        return await control.open()

    yield _connect
    for control in controls:
        control.close()
