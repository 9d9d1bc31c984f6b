"""Routing between workers on different nodes of a cluster (AWP-CLU-001..006)."""

from __future__ import annotations

import grpc
import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host._sharding import choose_member
from tests.cluster.conftest import ConnectTo, StartNode
from tests.host._raw import Closed, RawControl, event, hello, pack, payload, type_sub

pytestmark = pytest.mark.asyncio


@pytest.mark.requirement("AWP-CLU-002", "AWP-CLU-006")
async def test_event_published_on_one_node_reaches_subscriber_on_another(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    subscriber = await connect_to(b.port, "sub", hello())
    publisher = await connect_to(a.port, "pub", hello())
    await subscriber.register("listener")
    await subscriber.subscribe(type_sub("s1", "news", "listener"))
    # Read-your-writes: the subscription routes on every node once AddSubscription returned.
    for i in range(20):
        await publisher.publish(event("news", event_id=f"e{i}"))
    received = [(await subscriber.next_of("cloud_event")).cloud_event.id for _ in range(20)]
    assert received == [f"e{i}" for i in range(20)]
    # Each delivery is counted once, by the node that writes it to the worker.
    assert (a.metrics.events_delivered, b.metrics.events_delivered) == (0, 20)


@pytest.mark.requirement("AWP-CLU-003", "AWP-CLU-006")
async def test_rpc_across_nodes_is_correlated_under_host_ids(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    target = await connect_to(b.port, "target", hello())
    await target.register("echo")
    caller = await connect_to(a.port, "caller", hello())
    await caller.request("r1", "echo", "k", timeout_ms=10_000)
    forwarded = (await target.next_of("request")).request
    assert forwarded.request_id != "r1"
    assert forwarded.target.type == "echo"
    await target.respond(forwarded.request_id, payload("pong"))
    answer = (await caller.next_of("response")).response
    assert answer.request_id == "r1"
    assert answer.payload == payload("pong")


@pytest.mark.requirement("AWP-CLU-003")
async def test_cross_node_call_to_departed_worker_ends_target_unavailable(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    target = await connect_to(b.port, "target", hello())
    await target.register("echo")
    caller = await connect_to(a.port, "caller", hello())
    await caller.request("r1", "echo", timeout_ms=30_000)
    await target.next_of("request")
    await target.close()
    answer = (await caller.next_of("response")).response
    assert answer.request_id == "r1"
    assert answer.error_code == pb.ERROR_CODE_TARGET_UNAVAILABLE


@pytest.mark.requirement("AWP-CLU-003")
async def test_cross_node_deadline_is_enforced(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    target = await connect_to(b.port, "target", hello())
    await target.register("slow")
    caller = await connect_to(a.port, "caller", hello())
    await caller.request("r1", "slow", timeout_ms=300)
    await target.next_of("request")
    answer = (await caller.next_of("response")).response
    assert answer.request_id == "r1"
    assert answer.error_code == pb.ERROR_CODE_DEADLINE_EXCEEDED


@pytest.mark.requirement("AWP-CLU-005")
async def test_client_id_is_unique_across_nodes(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    await connect_to(a.port, "same", hello())
    with pytest.raises(Closed) as raised:
        await connect_to(b.port, "same", hello())
    assert raised.value.code == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.requirement("AWP-CLU-001")
async def test_exclusive_type_is_refused_on_another_node(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    first = await connect_to(a.port, "first", hello())
    second = await connect_to(b.port, "second", hello())
    await first.register("solo")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await second.register("solo")
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.requirement("AWP-CLU-006")
async def test_removed_subscription_stops_routing_on_every_node_at_return(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    subscriber = await connect_to(b.port, "sub", hello())
    publisher = await connect_to(a.port, "pub", hello())
    await subscriber.register("listener")
    await subscriber.subscribe(type_sub("gone", "news", "listener"))
    await subscriber.subscribe(type_sub("kept", "marker", "listener"))
    await subscriber.api.remove_subscription("gone", subscriber.metadata)
    await publisher.publish(event("news", event_id="after-removal"))
    await publisher.publish(event("marker", event_id="end"))
    assert await subscriber.events_until("end") == []


@pytest.mark.requirement("AWP-CLU-004")
async def test_shared_type_key_goes_to_one_member_from_every_node(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    nodes = [await start_node(name) for name in "abc"]
    shared = hello(pb.CAPABILITY_SHARED_AGENT_TYPES)
    members = {
        f"m{i}": await connect_to(node.port, f"m{i}", shared) for i, node in enumerate(nodes)
    }
    for member in members.values():
        await member.register("pool")
    callers = [await connect_to(node.port, f"c{i}", hello()) for i, node in enumerate(nodes)]
    for key in ("k1", "k2", "k3", "k4", "k5"):
        expected = members[choose_member(members, "pool", key) or ""]
        for caller in callers:
            await caller.request(f"{key}-r", "pool", key, timeout_ms=10_000)
            forwarded = (await expected.next_of("request")).request
            assert forwarded.target.key == key
            await expected.respond(forwarded.request_id, payload(key))
            answer = (await caller.next_of("response")).response
            assert answer.payload == payload(key)


@pytest.mark.requirement("AWP-CLU-007")
async def test_control_request_reaches_worker_on_another_node_and_back(
    start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    owner = await connect_to(b.port, "owner", hello(pb.CAPABILITY_STATE))
    await owner.register("keeper")
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{b.port}") as to_b,
        grpc.aio.insecure_channel(f"127.0.0.1:{a.port}") as to_a,
    ):
        owner_control = await RawControl(to_b, "owner").open()
        asker = await RawControl(to_a, "asker").open()
        request = pb.SaveStateRequest(agent_id=pb.AgentId(type="keeper", key="k1"))
        await asker.send("s1", "agentid=keeper/k1", pack(request))
        delivered = await owner_control.next()
        assert delivered.respond_to == "clientid=asker"
        assert pb.SaveStateRequest.FromString(delivered.rpc_message.value) == request
        reply = pb.SaveStateResponse(state="saved")
        await owner_control.send("s1", "clientid=asker", pack(reply))
        answer = await asker.next()
        assert answer.rpc_id == "s1"
        assert pb.SaveStateResponse.FromString(answer.rpc_message.value).state == "saved"
        owner_control.close()
        asker.close()
