"""RPCs between two workers through the reference host (section 10)."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentworker.v1 import agentworker_pb2
from reference_host import Host
from reference_worker import (
    DEFAULT_CAPABILITIES,
    LEGACY_SERVICE,
    AgentId,
    DeadlineExceededError,
    HandlerFailedError,
    TargetUnavailableError,
    TraceContext,
    UnknownTargetError,
    UnsupportedMessageError,
    Worker,
    trace_scope,
)
from tests.worker.agents import (
    Answer,
    Boom,
    Echo,
    Gate,
    Nothing,
    Question,
    Slow,
    TraceProbe,
    Unhandled,
)
from tests.worker.conftest import WorkerFactory, address_of

pytestmark = pytest.mark.asyncio


async def _pair(make_worker: WorkerFactory) -> tuple[Worker, Worker]:
    server = await make_worker()
    await server.register("echo", Echo)
    client = await make_worker()
    client.add_message_type(Answer)
    return server, client


@pytest.mark.requirement("AWP-RPC-001", "AWP-RPC-006", "AWP-VER-010")
async def test_call_returns_the_decoded_reply(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    assert client.welcome is not None  # the v1 handshake completed
    reply = await client.send(Question("hello"), AgentId("echo", "k1"), timeout=10)
    assert reply == Answer("k1: hello")


@pytest.mark.requirement("AWP-RPC-007")
async def test_concurrent_calls_are_matched_by_id(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    calls = [
        client.send(Question(str(n)), AgentId("echo", f"k{n % 3}"), timeout=10) for n in range(20)
    ]
    replies = await asyncio.gather(*calls)
    assert replies == [Answer(f"k{n % 3}: {n}") for n in range(20)]


@pytest.mark.requirement("AWP-RPC-021", "AWP-RPC-022")
async def test_handler_exception_is_handler_failed(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    with pytest.raises(HandlerFailedError, match="kaboom") as info:
        await client.send(Boom("kaboom"), AgentId("echo", "k"), timeout=10)
    assert info.value.code == agentworker_pb2.ERROR_CODE_HANDLER_FAILED


@pytest.mark.requirement("AWP-RPC-021")
async def test_undecodable_type_is_unsupported(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    with pytest.raises(UnsupportedMessageError):
        await client.send(Unhandled(), AgentId("echo", "k"), timeout=10)


@pytest.mark.requirement("AWP-RPC-020")
async def test_none_reply_decodes_as_none(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    assert await client.send(Nothing(), AgentId("echo", "k"), timeout=10) is None


@pytest.mark.requirement("AWP-RPC-022")
async def test_unknown_target(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    with pytest.raises(UnknownTargetError):
        await client.send(Question("?"), AgentId("nobody", "k"), timeout=10)


@pytest.mark.requirement("AWP-RPC-010", "AWP-RPC-012")
async def test_slow_handler_ends_with_deadline_exceeded(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    with pytest.raises(DeadlineExceededError):
        await client.send(Slow(30.0), AgentId("echo", "k"), timeout=0.5)
    # The channel still works afterwards.
    assert await client.send(Question("after"), AgentId("echo", "k"), timeout=10) == Answer(
        "k: after"
    )


@pytest.mark.requirement("AWP-REG-004")
async def test_one_instance_per_agent_id(make_worker: WorkerFactory) -> None:
    server, client = await _pair(make_worker)
    await client.send(Question("a"), AgentId("echo", "x"), timeout=10)
    await client.send(Question("b"), AgentId("echo", "x"), timeout=10)
    await client.send(Question("c"), AgentId("echo", "y"), timeout=10)
    first = await server.agent(AgentId("echo", "x"))
    assert first is await server.agent(AgentId("echo", "x"))
    assert first is not await server.agent(AgentId("echo", "y"))


@pytest.mark.requirement("AWP-OBS-004")
async def test_trace_context_is_propagated_as_the_parent(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    sent = TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    with trace_scope(sent):
        reply = await client.send(TraceProbe(), AgentId("echo", "t"), timeout=10)
    received, current = json.loads(reply.text)
    assert received == sent.traceparent
    assert current.split("-")[1] == sent.trace_id
    assert current != sent.traceparent  # the handler's work is a child span


@pytest.mark.requirement("AWP-CONN-019")
async def test_losing_the_channel_fails_calls_in_flight(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    Echo.started = asyncio.Event()
    try:
        call = asyncio.ensure_future(client.send(Slow(30.0), AgentId("echo", "k"), timeout=60))
        async with asyncio.timeout(10):
            await Echo.started.wait()
        conn = client.connection
        assert conn is not None
        await conn.abort()  # the caller's channel ends under it
        with pytest.raises(TargetUnavailableError):
            async with asyncio.timeout(10):
                await call
        # The worker reconnects on its own and calls work again (AWP-CONN-020).
        await client.wait_connected(2, timeout=30)
        # echo/k still runs the 30 s handler (its mailbox holds later calls, AWP-CONN-040).
        reply = await client.send(Question("again"), AgentId("echo", "k2"), timeout=10)
        assert reply == Answer("k2: again")
    finally:
        Echo.started = None


@pytest.mark.requirement("AWP-CONN-017")
async def test_stop_lets_running_handlers_answer(make_worker: WorkerFactory) -> None:
    server, client = await _pair(make_worker)
    Echo.started = asyncio.Event()
    try:
        call = asyncio.ensure_future(client.send(Slow(0.3), AgentId("echo", "k"), timeout=30))
        async with asyncio.timeout(10):
            await Echo.started.wait()
        await server.stop(grace=10.0)
        assert await asyncio.wait_for(call, 10) == Answer("slept")
    finally:
        Echo.started = None


@pytest.mark.requirement("AWP-VER-003")
async def test_legacy_service_path(host: Host) -> None:
    server = Worker(address_of(host), service=LEGACY_SERVICE)
    client = Worker(address_of(host))
    try:
        await server.register("echo", Echo)
        await server.start()
        await client.start()
        client.add_message_type(Answer)
        assert await client.send(Question("old"), AgentId("echo", "k"), timeout=10) == Answer(
            "k: old"
        )
    finally:
        await client.stop(grace=1.0)
        await server.stop(grace=1.0)


@pytest.mark.requirement("AWP-CONN-003")
async def test_payloads_over_four_mib(make_worker: WorkerFactory) -> None:
    _, client = await _pair(make_worker)
    text = "x" * (5 * 1024 * 1024)
    reply = await client.send(Question(text), AgentId("echo", "big"), timeout=30)
    assert reply == Answer(f"big: {text}")


@pytest.mark.requirement("AWP-FLOW-004")
async def test_handler_concurrency_is_bounded(make_worker: WorkerFactory) -> None:
    server = await make_worker(max_concurrency=2)
    await server.register("gate", Gate)
    client = await make_worker()
    client.add_message_type(Answer)
    Gate.active = Gate.peak = 0
    replies = await asyncio.gather(
        *(client.send(Question(str(n)), AgentId("gate", str(n)), timeout=20) for n in range(6))
    )
    assert replies == [Answer("ok")] * 6
    assert 1 <= Gate.peak <= 2


async def test_shared_agent_type_spreads_keys_over_workers(make_worker: WorkerFactory) -> None:
    shared = (*DEFAULT_CAPABILITIES, agentworker_pb2.CAPABILITY_SHARED_AGENT_TYPES)
    first = await make_worker(capabilities=shared)
    second = await make_worker(capabilities=shared)
    if not first.in_force(agentworker_pb2.CAPABILITY_SHARED_AGENT_TYPES):
        pytest.skip("the host does not offer CAPABILITY_SHARED_AGENT_TYPES")
    await first.register("echo", Echo)
    await second.register("echo", Echo)
    client = await make_worker()
    client.add_message_type(Answer)
    keys = [f"k{n}" for n in range(24)]
    for _ in range(2):  # the same key goes to the same member every time
        for key in keys:
            assert await client.send(Question("s"), AgentId("echo", key), timeout=10) == Answer(
                f"{key}: s"
            )
    served = [{agent.key for agent in worker.agent_ids} for worker in (first, second)]
    assert served[0] | served[1] == set(keys)
    assert not served[0] & served[1]
    assert served[0]
    assert served[1]
