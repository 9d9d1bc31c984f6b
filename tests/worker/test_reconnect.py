"""Reconnect after the host restarts (AWP-CONN-020)."""

from __future__ import annotations

import pytest

from reference_host import Host, HostConfig
from reference_worker import AgentId, TargetUnavailableError, Worker
from tests.worker.agents import Answer, Echo, Question

pytestmark = pytest.mark.asyncio


@pytest.mark.requirement("AWP-CONN-020", "AWP-CONN-021", "AWP-CONN-006")
async def test_workers_reregister_after_a_host_restart() -> None:
    config = HostConfig(metrics_log_interval_s=0)
    first = Host(address="127.0.0.1:0", config=config)
    await first.start()
    address = f"127.0.0.1:{first.port}"
    server = Worker(address)
    client = Worker(address)
    second: Host | None = None
    try:
        await server.register("echo", Echo)
        await server.start()
        await client.start()
        client.add_message_type(Answer)
        subscription_ids = [s.id for s in server.subscriptions]
        client_id = server.client_id
        assert await client.send(Question("1"), AgentId("echo", "a"), timeout=10) == Answer("a: 1")
        await first.stop(grace=0.5)
        second = Host(address=address, config=config)
        await second.start()
        await server.wait_connected(2, timeout=30)
        await client.wait_connected(2, timeout=30)
        assert [s.id for s in server.subscriptions] == subscription_ids
        assert server.client_id == client_id
        assert await client.send(Question("2"), AgentId("echo", "a"), timeout=10) == Answer("a: 2")
    finally:
        await client.stop(grace=1.0)
        await server.stop(grace=1.0)
        await first.stop(grace=0.5)
        if second is not None:
            await second.stop(grace=0.5)


async def test_without_reconnect_calls_fail_fast_after_loss() -> None:
    host = Host(address="127.0.0.1:0", config=HostConfig(metrics_log_interval_s=0))
    await host.start()
    worker = Worker(f"127.0.0.1:{host.port}", reconnect=False)
    try:
        await worker.start()
        conn = worker.connection
        assert conn is not None
        await host.stop(grace=0.5)
        await conn.lost.wait()
        with pytest.raises(TargetUnavailableError):
            await worker.send(Question("x"), AgentId("echo", "a"), timeout=5)
    finally:
        await worker.stop(grace=1.0)
        await host.stop(grace=0.5)
