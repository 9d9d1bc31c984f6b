"""The worker's wire behaviour checked against a scripted host (sections 5, 10, 12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from agentworker.v1 import agentworker_pb2
from reference_worker import (
    Agent,
    AgentId,
    DeadlineExceededError,
    HandlerFailedError,
    MessageContext,
    TopicId,
    Worker,
    handler,
    type_subscription,
)
from tests.worker.fake_host import FakeHost

pytestmark = pytest.mark.asyncio

V1_WELCOME = agentworker_pb2.ChannelWelcome(
    protocol_version=1,
    capabilities=[agentworker_pb2.CAPABILITY_BATCHING],
    default_rpc_timeout_ms=60_000,
    max_batch_messages=1024,
    max_message_bytes=16 << 20,
)


@dataclass
class Note:
    text: str


class Noter(Agent):
    @handler
    async def on_note(self, message: Note, ctx: MessageContext) -> Note:
        return Note(message.text.upper())


async def _fake(welcome: agentworker_pb2.ChannelWelcome | None) -> FakeHost:
    fake = FakeHost(welcome)
    await fake.start()
    return fake


@pytest_asyncio.fixture
async def v1_host() -> AsyncIterator[FakeHost]:
    fake = await _fake(V1_WELCOME)
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def legacy_host() -> AsyncIterator[FakeHost]:
    fake = await _fake(None)
    yield fake
    await fake.stop()


@pytest.mark.requirement("AWP-VER-010", "AWP-CONN-002", "AWP-CONN-007", "AWP-SUB-011")
async def test_handshake_metadata_and_registration(v1_host: FakeHost) -> None:
    worker = Worker(f"127.0.0.1:{v1_host.port}", client_id="w-1")
    await worker.register("noter", Noter, subscriptions=[type_subscription("notes")])
    await worker.start()
    try:
        hello = agentworker_pb2.ChannelHello()
        hello.ParseFromString(v1_host.channel_metadata["agentworker-hello-bin"])
        assert hello.protocol_version == 1
        assert hello.implementation == "reference_worker/0.1.0 (python)"
        assert set(hello.capabilities) == set(worker.capabilities)
        assert v1_host.channel_metadata["client-id"] == "w-1"
        assert all(md["client-id"] == "w-1" for md in v1_host.unary_metadata)
        assert v1_host.registered == ["noter"]
        rules = {
            (s.WhichOneof("subscription"), s.type_subscription.topic_type)
            if s.HasField("type_subscription")
            else (s.WhichOneof("subscription"), s.type_prefix_subscription.topic_type_prefix)
            for s in v1_host.subscriptions
        }
        assert rules == {("type_prefix_subscription", "noter:"), ("type_subscription", "notes")}
        assert worker.in_force(agentworker_pb2.CAPABILITY_BATCHING)
    finally:
        await worker.stop(grace=1.0)


@pytest.mark.requirement("AWP-RPC-001", "AWP-RPC-012")
async def test_a_host_that_never_answers_cannot_hang_a_call(v1_host: FakeHost) -> None:
    worker = Worker(f"127.0.0.1:{v1_host.port}")
    await worker.start()
    try:
        calls = [
            asyncio.ensure_future(worker.send(Note(str(n)), AgentId("t", "k"), timeout=0.2))
            for n in range(3)
        ]
        for call in calls:
            with pytest.raises(DeadlineExceededError):
                await asyncio.wait_for(call, 10)
        await v1_host.wait_until(lambda: len(v1_host.unbatched()) >= 3)
        requests = [frame.request for frame in v1_host.unbatched()]
        assert len(requests) == 3
        assert len({r.request_id for r in requests}) == 3
        assert all(r.request_id and r.timeout_ms == 200 for r in requests)
        assert all(r.payload.data_type == "Note" for r in requests)
    finally:
        await worker.stop(grace=1.0)


@pytest.mark.requirement("AWP-RPC-007", "AWP-RPC-008", "AWP-ERR-003", "AWP-ERR-011")
async def test_responses_any_order_unknown_ids_legacy_errors_and_notices(
    v1_host: FakeHost,
) -> None:
    worker = Worker(f"127.0.0.1:{v1_host.port}")
    worker.add_message_type(Note)
    await worker.start()
    try:
        first = asyncio.ensure_future(worker.send(Note("a"), AgentId("t", "k"), timeout=10))
        second = asyncio.ensure_future(worker.send(Note("b"), AgentId("t", "k"), timeout=10))
        await v1_host.wait_until(lambda: len(v1_host.unbatched()) >= 2)
        ids = [frame.request.request_id for frame in v1_host.unbatched()]
        Response = agentworker_pb2.OpenChannelResponse
        # Noise first: an unknown id, a notice and a frame with no known case.
        await v1_host.outbound.put(Response(response=agentworker_pb2.RpcResponse(request_id="zz")))
        notice = agentworker_pb2.Notice(
            code=agentworker_pb2.ERROR_CODE_INVALID_REQUEST, message="x"
        )
        await v1_host.outbound.put(Response(notice=notice))
        await v1_host.outbound.put(Response())
        # Answers in reverse order; the first as a legacy error (no code).
        reply = agentworker_pb2.Payload(data_type="Note", data_content_type="application/json")
        reply.data = b'{"text": "B"}'
        batch = Response.Batch(
            messages=[
                Response(response=agentworker_pb2.RpcResponse(request_id=ids[1], payload=reply)),
                Response(response=agentworker_pb2.RpcResponse(request_id=ids[0], error="old")),
            ]
        )
        await v1_host.outbound.put(Response(batch=batch))
        assert await asyncio.wait_for(second, 10) == Note("B")
        with pytest.raises(HandlerFailedError, match="old"):
            await asyncio.wait_for(first, 10)
        assert [n.message for n in worker.notices] == ["x"]
    finally:
        await worker.stop(grace=1.0)


@pytest.mark.requirement("AWP-RPC-006", "AWP-BAT-003")
async def test_requests_in_a_batch_are_each_answered_once(v1_host: FakeHost) -> None:
    worker = Worker(f"127.0.0.1:{v1_host.port}")
    await worker.register("noter", Noter)
    await worker.start()
    try:
        Response = agentworker_pb2.OpenChannelResponse
        payload = agentworker_pb2.Payload(
            data_type="Note", data_content_type="application/json", data=b'{"text": "hi"}'
        )
        bad = agentworker_pb2.Payload(
            data_type="Mystery", data_content_type="application/json", data=b"{}"
        )
        target = agentworker_pb2.AgentId(type="noter", key="k")
        batch = Response.Batch(
            messages=[
                Response(request=agentworker_pb2.RpcRequest(request_id="h1", target=target,
                                                            payload=payload)),
                Response(request=agentworker_pb2.RpcRequest(request_id="h2", target=target,
                                                            payload=bad)),
            ]
        )  # fmt: skip
        await v1_host.outbound.put(Response(batch=batch))
        await v1_host.wait_until(lambda: len(v1_host.unbatched()) >= 2)
        await worker.stop(grace=5.0)  # flushes anything else the worker would send
        answers = [frame.response for frame in v1_host.unbatched()]
        assert sorted(answer.request_id for answer in answers) == ["h1", "h2"]  # exactly once
        responses = {answer.request_id: answer for answer in answers}
        assert responses["h1"].payload.data == b'{"text":"HI"}'
        assert responses["h1"].error_code == agentworker_pb2.ERROR_CODE_UNSPECIFIED
        assert responses["h2"].error_code == agentworker_pb2.ERROR_CODE_UNSUPPORTED_MESSAGE
        assert responses["h2"].error
    finally:
        await worker.stop(grace=1.0)


@pytest.mark.requirement("AWP-VER-015", "AWP-BAT-001")
async def test_legacy_host_gets_no_batches(legacy_host: FakeHost) -> None:
    worker = Worker(f"127.0.0.1:{legacy_host.port}")
    await worker.start()
    try:
        assert worker.welcome is None
        assert not worker.in_force(agentworker_pb2.CAPABILITY_BATCHING)
        for n in range(20):
            await worker.publish(Note(str(n)), TopicId("t", "s"))
        await legacy_host.wait_frames(20)
        assert all(frame.HasField("cloud_event") for frame in legacy_host.frames)
    finally:
        await worker.stop(grace=1.0)


class Sleeper(Agent):
    @handler
    async def on_note(self, message: Note, ctx: MessageContext) -> Note:
        await asyncio.sleep(60)
        return message


@pytest.mark.requirement("AWP-RPC-013", "AWP-ERR-002")
async def test_handler_stops_when_the_request_deadline_passes(v1_host: FakeHost) -> None:
    worker = Worker(f"127.0.0.1:{v1_host.port}")
    await worker.register("sleeper", Sleeper)
    await worker.start()
    try:
        request = agentworker_pb2.RpcRequest(
            request_id="h1",
            target=agentworker_pb2.AgentId(type="sleeper", key="k"),
            payload=agentworker_pb2.Payload(
                data_type="Note", data_content_type="application/json", data=b'{"text": "z"}'
            ),
            timeout_ms=100,
        )
        await v1_host.outbound.put(agentworker_pb2.OpenChannelResponse(request=request))
        await v1_host.wait_until(lambda: len(v1_host.unbatched()) >= 1)
        response = v1_host.unbatched()[0].response
        assert response.request_id == "h1"
        assert response.error
        assert response.error_code == agentworker_pb2.ERROR_CODE_DEADLINE_EXCEEDED
    finally:
        await worker.stop(grace=1.0)


@pytest.mark.requirement("AWP-VER-012", "AWP-CONN-013")
async def test_capability_needs_both_sides(v1_host: FakeHost) -> None:
    worker = Worker(f"127.0.0.1:{v1_host.port}", capabilities=())
    await worker.start()
    try:
        assert worker.welcome is not None
        assert agentworker_pb2.CAPABILITY_BATCHING in worker.welcome.capabilities
        assert not worker.in_force(agentworker_pb2.CAPABILITY_BATCHING)
        # A frame with no known case is ignored and the channel stays usable.
        await v1_host.outbound.put(agentworker_pb2.OpenChannelResponse())
        for n in range(10):
            await worker.publish(Note(str(n)), TopicId("t", "s"))
        await v1_host.wait_frames(10)
        assert all(frame.HasField("cloud_event") for frame in v1_host.frames)
    finally:
        await worker.stop(grace=1.0)


@pytest.mark.requirement("AWP-RPC-023")
async def test_a_response_with_neither_payload_nor_error_is_a_failure(v1_host: FakeHost) -> None:
    worker = Worker(f"127.0.0.1:{v1_host.port}")
    worker.add_message_type(Note)
    await worker.start()
    try:
        call = asyncio.ensure_future(worker.send(Note("a"), AgentId("t", "k"), timeout=10))
        await v1_host.wait_until(lambda: len(v1_host.unbatched()) >= 1)
        request_id = v1_host.unbatched()[0].request.request_id
        empty = agentworker_pb2.RpcResponse(request_id=request_id)
        await v1_host.outbound.put(agentworker_pb2.OpenChannelResponse(response=empty))
        with pytest.raises(HandlerFailedError, match="no payload"):
            await asyncio.wait_for(call, 10)
    finally:
        await worker.stop(grace=1.0)
