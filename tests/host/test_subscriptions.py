"""AddSubscription / RemoveSubscription / GetSubscriptions."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from agentworker.v1 import agentworker_pb2 as pb
from tests.host._raw import Api, hello, prefix_sub, type_sub
from tests.host.conftest import ConnectWorker


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SUB-001", "AWP-SUB-004", "AWP-SUB-006")
async def test_add_list_remove(connect: ConnectWorker) -> None:
    a = await connect("a", hello())
    b = await connect("b", hello())
    await a.subscribe(type_sub("s1", "topic", "agent"))
    await b.subscribe(prefix_sub("s2", "agent:", "agent"))
    listed = await a.api.get_subscriptions(a.metadata)
    by_id = {sub.id: sub for sub in listed.subscriptions}
    assert by_id == {
        "s1": type_sub("s1", "topic", "agent"),
        "s2": prefix_sub("s2", "agent:", "agent"),
    }
    await a.api.remove_subscription("s1", a.metadata)
    listed = await b.api.get_subscriptions(b.metadata)
    assert [sub.id for sub in listed.subscriptions] == ["s2"]


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-022", "AWP-SUB-002")
async def test_same_id_same_content_is_idempotent_otherwise_already_exists(
    connect: ConnectWorker,
) -> None:
    a = await connect("a", hello())
    b = await connect("b", hello())
    await a.subscribe(type_sub("dup", "topic", "agent"))
    await a.subscribe(type_sub("dup", "topic", "agent"))
    for worker, subscription in (
        (a, type_sub("dup", "other", "agent")),
        (a, prefix_sub("dup", "topic", "agent")),
        (b, type_sub("dup", "topic", "agent")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await worker.subscribe(subscription)
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "dup" in (info.value.details() or "")
    listed = await a.api.get_subscriptions(a.metadata)
    assert list(listed.subscriptions) == [type_sub("dup", "topic", "agent")]


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SUB-001")
@pytest.mark.parametrize(
    "subscription",
    [
        type_sub("", "topic", "agent"),
        pb.Subscription(id="no-rule"),
        type_sub("x", "", "agent"),
        type_sub("x", "topic", ""),
        prefix_sub("x", "", "agent"),
        prefix_sub("x", "topic", ""),
    ],
    ids=["no-id", "no-rule", "empty-topic", "empty-agent", "empty-prefix", "empty-prefix-agent"],
)
async def test_malformed_subscription_is_invalid_argument(
    connect: ConnectWorker, subscription: pb.Subscription
) -> None:
    worker = await connect("w", hello())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await worker.subscribe(subscription)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SUB-004")
async def test_remove_unknown_is_not_found_and_foreign_is_permission_denied(
    connect: ConnectWorker,
) -> None:
    a = await connect("a", hello())
    b = await connect("b", hello())
    await a.subscribe(type_sub("mine", "topic", "agent"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await a.api.remove_subscription("nope", a.metadata)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await b.api.remove_subscription("mine", b.metadata)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await a.api.get_subscriptions(a.metadata)
    assert [sub.id for sub in listed.subscriptions] == ["mine"]


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SUB-005", "AWP-CONN-018")
async def test_disconnect_removes_owned_subscriptions(connect: ConnectWorker) -> None:
    a = await connect("a", hello())
    b = await connect("b", hello())
    await a.subscribe(type_sub("a1", "topic", "agent"))
    await a.subscribe(prefix_sub("a2", "agent:", "agent"))
    await b.subscribe(type_sub("b1", "topic", "agent"))
    await a.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        listed = await b.api.get_subscriptions(b.metadata)
        ids = {sub.id for sub in listed.subscriptions}
        if ids == {"b1"}:
            break
        assert loop.time() < deadline, ids
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-008")
async def test_add_subscription_without_channel_is_failed_precondition(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await Api(channel).add_subscription(
            type_sub("lonely", "topic", "agent"), (("client-id", "ghost"),)
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
