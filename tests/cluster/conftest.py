"""Fixtures for cluster tests: one real NATS server per module, host nodes on loopback.

Each test gets its own cluster name, so the tests of a module share the NATS server without
seeing each other's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from reference_host import Host, HostConfig
from reference_host._config import ClusterConfig
from reference_host.cluster.nats_server import NatsServer
from tests.cluster._nodes import NodeProcess
from tests.host._raw import RawWorker

# Short leases keep node-loss tests short; long enough for a loaded 2-core machine.
LEASE_MS = 1_500
_names = itertools.count(1)


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    """A real nats-server with JetStream on a free loopback port."""
    with NatsServer() as server:
        yield server


@pytest.fixture
def cluster_name(request: pytest.FixtureRequest) -> str:
    """A cluster name unique to the test."""
    return f"t{next(_names)}-{abs(hash(request.node.nodeid)) % 100_000}"


StartNode = Callable[..., Awaitable[Host]]


@pytest_asyncio.fixture
async def start_node(nats_server: NatsServer, cluster_name: str) -> AsyncIterator[StartNode]:
    """Start host nodes of one cluster in this process (through NATS at ``servers`` when given,
    e.g. a proxy); all are stopped at teardown."""
    hosts: list[Host] = []

    async def _start(node_id: str = "", servers: str = "", **overrides: Any) -> Host:
        overrides.setdefault("channel_wait_ms", 2_000)
        overrides.setdefault("metrics_log_interval_s", 0)
        config = HostConfig(
            cluster=ClusterConfig(
                servers=(servers or nats_server.url,),
                node_id=node_id,
                name=cluster_name,
                lease_ms=LEASE_MS,
            ),
            **overrides,
        )
        host = Host("127.0.0.1:0", config)
        await host.start()
        hosts.append(host)
        return host

    yield _start
    for host in hosts:
        await asyncio.wait_for(host.stop(grace=None), 30)


ConnectTo = Callable[..., Awaitable[RawWorker]]


@pytest_asyncio.fixture
async def connect_to() -> AsyncIterator[ConnectTo]:
    """Open raw worker channels to a given node; closed at teardown."""
    channels: list[grpc.aio.Channel] = []
    workers: list[RawWorker] = []

    async def _connect(port: int, client_id: str, hello: Any = None) -> RawWorker:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        worker = RawWorker(channel, client_id)
        workers.append(worker)
        return await worker.open(hello)

    yield _connect
    for worker in workers:
        with contextlib.suppress(Exception):
            await worker.close()
    for channel in channels:
        await channel.close(None)


SpawnNode = Callable[[str], Awaitable[NodeProcess]]


@pytest_asyncio.fixture
async def spawn_node(nats_server: NatsServer, cluster_name: str) -> AsyncIterator[SpawnNode]:
    """Start host nodes of the test's cluster as processes; stopped at teardown."""
    nodes: list[NodeProcess] = []

    async def _spawn(node_id: str) -> NodeProcess:
        node = NodeProcess(nats_server.url, cluster_name, node_id, LEASE_MS)
        nodes.append(node)
        return await node.start()

    yield _spawn
    for node in nodes:
        await node.stop()
