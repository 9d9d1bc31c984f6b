"""Opening data channels: client-id, one channel per client, handshake, legacy path, frames."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host
from tests.host._raw import (
    HELLO_KEY,
    LEGACY_SERVICE,
    TIMEOUT_S,
    V1_SERVICE,
    Api,
    Closed,
    event,
    hello,
    prefix_sub,
    retry_while,
    type_sub,
)
from tests.host.conftest import ConnectWorker


async def _open_status(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str | bytes], ...]
) -> tuple[grpc.StatusCode, str]:
    call = channel.stream_stream(
        f"/{V1_SERVICE}/OpenChannel",
        request_serializer=pb.OpenChannelRequest.SerializeToString,
        response_deserializer=pb.OpenChannelResponse.FromString,
    )(None, metadata=metadata)
    code = await asyncio.wait_for(call.code(), TIMEOUT_S)
    details = await call.details()
    return code, details


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-002")
async def test_open_channel_without_client_id_is_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    code, _ = await _open_status(channel, ())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await _open_status(channel, (("client-id", ""),))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-002")
async def test_unary_calls_without_client_id_are_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    api = Api(channel)
    calls = [
        api.register("a", ()),
        api.add_subscription(type_sub("s", "t", "a"), ()),
        api.remove_subscription("s", ()),
        api.get_subscriptions(()),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-005")
async def test_second_channel_for_a_client_is_already_exists_and_first_survives(
    connect: ConnectWorker,
) -> None:
    first = await connect("w1", hello())
    with pytest.raises(Closed) as info:
        await connect("w1", hello())
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert "w1" in (info.value.details or "")
    await first.register("alive")
    await first.subscribe(type_sub("s-alive", "ping", "alive"))
    await first.publish(event("ping", event_id="still-here"))
    frame = await first.next_of("cloud_event")
    assert frame.cloud_event.id == "still-here"


@pytest.mark.asyncio
async def test_client_can_reopen_after_its_channel_closed(connect: ConnectWorker) -> None:
    first = await connect("again", hello())
    await first.register("again-type")
    await first.close()
    second = await retry_while(grpc.StatusCode.ALREADY_EXISTS, lambda: connect("again", hello()))
    await second.register("again-type")


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-VER-014")
async def test_malformed_hello_is_invalid_argument(channel: grpc.aio.Channel) -> None:
    code, _ = await _open_status(channel, (("client-id", "bad"), (HELLO_KEY, b"\xff\xff\xff")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-VER-014")
async def test_unknown_protocol_version_is_failed_precondition(
    channel: grpc.aio.Channel,
) -> None:
    future = pb.ChannelHello(protocol_version=2).SerializeToString()
    code, details = await _open_status(channel, (("client-id", "v2"), (HELLO_KEY, future)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "1" in details


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-VER-010", "AWP-VER-012", "AWP-VER-013")
async def test_welcome_lists_negotiated_capabilities_and_limits(
    host: Host, connect: ConnectWorker
) -> None:
    # Nothing is written before the welcome is checked: it must come without a frame.
    worker = await connect(
        "v1",
        hello(pb.CAPABILITY_BATCHING, pb.CAPABILITY_RECONNECT, pb.CAPABILITY_TLS, 99),
    )
    welcome = worker.welcome
    assert welcome is not None
    assert welcome.protocol_version == 1
    assert list(welcome.capabilities) == [pb.CAPABILITY_BATCHING]
    assert welcome.implementation.startswith("reference_host/")
    assert welcome.default_rpc_timeout_ms == host.config.default_rpc_timeout_ms == 60_000
    assert welcome.max_batch_messages == 1024
    assert welcome.max_message_bytes == 16 * 1024 * 1024
    assert welcome.connection_id
    assert welcome.channel_wait_ms == host.config.channel_wait_ms
    assert welcome.max_rpc_timeout_ms == host.config.max_rpc_timeout_ms == 3_600_000
    assert list(welcome.security_mechanisms) == []


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-VER-012")
async def test_welcome_lists_every_offered_capability_the_worker_has(
    connect: ConnectWorker,
) -> None:
    worker = await connect("all", hello(*range(1, 9)))
    assert worker.welcome is not None
    assert set(worker.welcome.capabilities) == {
        pb.CAPABILITY_BATCHING,
        pb.CAPABILITY_STATE,
        pb.CAPABILITY_SHARED_AGENT_TYPES,
        pb.CAPABILITY_TRACE_CONTEXT,
    }


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-VER-011")
async def test_legacy_worker_gets_no_welcome(connect: ConnectWorker) -> None:
    worker = await connect("legacy")
    assert worker.welcome is None


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-VER-003")
async def test_legacy_service_path_serves_every_method(connect: ConnectWorker) -> None:
    worker = await connect("autogen-like", service=LEGACY_SERVICE)
    await worker.register("legacy_agent")
    await worker.subscribe(prefix_sub("legacy-direct", "legacy_agent:", "legacy_agent"))
    await worker.subscribe(type_sub("legacy-topic", "legacy.topic", "legacy_agent"))
    listed = await worker.api.get_subscriptions(worker.metadata)
    assert {sub.id for sub in listed.subscriptions} == {"legacy-direct", "legacy-topic"}
    await worker.publish(event("legacy.topic", "key1", event_id="via-legacy"))
    received = await worker.next()
    assert received.cloud_event.id == "via-legacy"
    await worker.request("r1", "legacy_agent", "key1")
    delivered = await worker.next()
    assert delivered.WhichOneof("message") == "request"
    await worker.respond(delivered.request.request_id, pb.Payload(data_type="Pong"))
    answer = await worker.next()
    assert answer.response.request_id == "r1"
    assert answer.response.payload.data_type == "Pong"
    await worker.api.remove_subscription("legacy-topic", worker.metadata)
    listed = await worker.api.get_subscriptions(worker.metadata)
    assert {sub.id for sub in listed.subscriptions} == {"legacy-direct"}


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-012", "AWP-ERR-010")
async def test_frame_without_case_gets_notice_and_channel_stays_open(
    host: Host, connect: ConnectWorker
) -> None:
    worker = await connect("empty-frames", hello())
    await worker.register("ef")
    await worker.subscribe(type_sub("ef-sub", "ef.topic", "ef"))
    await worker.send(pb.OpenChannelRequest())
    notice = await worker.next()
    assert notice.notice.code == pb.ERROR_CODE_INVALID_REQUEST
    assert notice.notice.message
    await worker.publish(event("ef.topic", event_id="after"))
    assert (await worker.next()).cloud_event.id == "after"
    assert host.metrics.frames_invalid == 1


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-012", "AWP-VER-011")
async def test_legacy_worker_gets_no_notice_for_frame_without_case(
    host: Host, connect: ConnectWorker
) -> None:
    worker = await connect("legacy-empty")
    await worker.register("le")
    await worker.subscribe(type_sub("le-sub", "le.topic", "le"))
    await worker.send(pb.OpenChannelRequest())
    await worker.publish(event("le.topic", event_id="marker"))
    # Frames are processed in order: the marker is the first thing the worker receives.
    assert (await worker.next()).cloud_event.id == "marker"
    assert host.metrics.frames_invalid == 1
