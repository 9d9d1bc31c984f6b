"""RegisterAgent: validation, idempotency, exclusivity and the wait for the data channel."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from agentworker.v1 import agentworker_pb2 as pb
from tests.host._raw import Api, hello, payload, retry_while
from tests.host.conftest import ConnectWorker


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-REG-001", "AWP-CONN-022")
async def test_register_routes_requests_and_is_idempotent(connect: ConnectWorker) -> None:
    server = await connect("server", hello())
    caller = await connect("caller", hello())
    await server.register("echo")
    await server.register("echo")
    await caller.request("1", "echo", "k")
    delivered = await server.next()
    assert delivered.request.target.type == "echo"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-REG-002", "AWP-REG-005")
@pytest.mark.parametrize("agent_type", ["", "has space", "x" * 256, "ümlaut", "a/b", "a:b"])
async def test_invalid_agent_type_is_invalid_argument(
    connect: ConnectWorker, agent_type: str
) -> None:
    worker = await connect("w", hello())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await worker.register(agent_type)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-REG-002")
async def test_valid_agent_type_edge_cases(connect: ConnectWorker) -> None:
    worker = await connect("w", hello())
    await worker.register("x" * 255)
    await worker.register("Az09_.-")


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-REG-003", "AWP-REG-005")
async def test_type_held_by_another_worker_is_already_exists(connect: ConnectWorker) -> None:
    first = await connect("first", hello())
    second = await connect("second", hello())
    await first.register("solo")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await second.register("solo")
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "solo" in (info.value.details() or "")


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-REG-003")
async def test_sharing_needs_the_capability_on_every_member(connect: ConnectWorker) -> None:
    shared = await connect("shared", hello(pb.CAPABILITY_SHARED_AGENT_TYPES))
    plain = await connect("plain", hello())
    legacy = await connect("legacy")
    await shared.register("pool")
    for worker in (plain, legacy):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await worker.register("pool")
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await plain.register("exclusive")
    late = await connect("late", hello(pb.CAPABILITY_SHARED_AGENT_TYPES))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await late.register("exclusive")
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-008", "AWP-REG-005")
async def test_register_without_data_channel_is_failed_precondition(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await Api(channel).register("orphan", (("client-id", "nobody"),))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "nobody" in (info.value.details() or "")


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-008")
async def test_register_waits_for_a_channel_opened_just_after(
    channel: grpc.aio.Channel, connect: ConnectWorker
) -> None:
    registering = asyncio.ensure_future(Api(channel).register("early", (("client-id", "eager"),)))
    await asyncio.sleep(0.05)
    worker = await connect("eager", hello())
    await registering
    caller = await connect("caller", hello())
    await caller.request("1", "early")
    assert (await worker.next()).WhichOneof("message") == "request"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-018")
async def test_disconnect_frees_the_type(connect: ConnectWorker) -> None:
    first = await connect("first", hello())
    await first.register("handover")
    await first.close()
    second = await connect("second", hello())
    await retry_while(grpc.StatusCode.ALREADY_EXISTS, lambda: second.register("handover"))
    caller = await connect("caller", hello())
    await caller.send(
        pb.OpenChannelRequest(
            request=pb.RpcRequest(
                request_id="1", target=pb.AgentId(type="handover", key="k"), payload=payload()
            )
        )
    )
    assert (await second.next()).request.target.type == "handover"
