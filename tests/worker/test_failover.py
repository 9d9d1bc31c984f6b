"""Several host addresses: a worker fails over to another host when its host dies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from reference_worker import AgentId, TopicId, Worker, type_subscription
from reference_worker._config import settings_from_env
from tests.worker.agents import Answer, Echo, Greeting, Listener, Question
from tests.worker.conftest import PYTHON, ROOT, Inbox, subprocess_env

HostProcess = tuple[asyncio.subprocess.Process, str]
StartHost = Callable[[], Awaitable[HostProcess]]


@pytest_asyncio.fixture
async def start_host() -> AsyncIterator[StartHost]:
    """Starts reference host processes on free ports; kills what is left at the end."""
    started: list[asyncio.subprocess.Process] = []

    async def start() -> HostProcess:
        process = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "reference_host", "--address", "127.0.0.1:0", "--log-format", "json",
            cwd=ROOT, env=subprocess_env(), stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        started.append(process)
        assert process.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = await process.stderr.readline()
                assert line, "the host exited before it started"
                record = json.loads(line)
                if record.get("event") == "host.started":
                    break
        # Keep reading the host's log so that it never blocks on a full pipe.
        drain = asyncio.ensure_future(process.stderr.read())
        drains.append(drain)
        return process, f"127.0.0.1:{record['port']}"

    drains: list[asyncio.Future[bytes]] = []
    try:
        yield start
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
            await process.wait()
        await asyncio.gather(*drains, return_exceptions=True)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-020")
async def test_worker_fails_over_to_the_next_host_and_registers_again(
    start_host: StartHost,
) -> None:
    first, first_address = await start_host()
    _, second_address = await start_host()
    inbox = Inbox()
    server = Worker([first_address, second_address])
    await server.register("echo", Echo)
    await server.register(
        "listener", lambda: Listener(inbox), subscriptions=[type_subscription("news")]
    )
    await server.start()
    client = Worker(second_address)
    client.add_message_type(Answer)
    try:
        assert server.host_address == first_address
        await client.start()
        first.kill()  # the node dies without a goodbye
        await server.wait_connected(2, timeout=30)
        assert server.host_address == second_address
        reply = await client.send(Question("again"), AgentId("echo", "k"), timeout=10)
        assert reply == Answer("k: again")
        await client.publish(Greeting("after failover"), TopicId("news", "n1"))
        (key, topic, message, _), *_ = await inbox.wait_for(1)
        assert (key, topic, message) == ("n1", TopicId("news", "n1"), Greeting("after failover"))
    finally:
        await client.stop(grace=1.0)
        await server.stop(grace=1.0)


@pytest.mark.asyncio
async def test_worker_starts_on_the_first_address_that_answers(start_host: StartHost) -> None:
    _, address = await start_host()
    dead = "127.0.0.1:1"  # nothing listens on port 1
    worker = Worker([dead, address], reconnect=False)
    try:
        await worker.start()
        assert worker.host_address == address
    finally:
        await worker.stop(grace=1.0)


def test_the_host_address_variable_may_list_several_addresses() -> None:
    settings = settings_from_env({"AGENTWORKER_HOST_ADDRESS": "a:1, b:2,,c:3"})
    assert settings.host_addresses == ["a:1", "b:2", "c:3"]
