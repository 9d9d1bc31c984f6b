"""RPC routing: correlation, validation, unknown targets, deadlines and disconnects."""

from __future__ import annotations

import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host
from tests.host._raw import RawWorker, eventually, hello, payload
from tests.host.conftest import ConnectWorker


async def _server(
    connect: ConnectWorker, name: str = "server", agent_type: str = "echo"
) -> RawWorker:
    worker = await connect(name, hello())
    await worker.register(agent_type)
    return worker


def _assert_error(response: pb.RpcResponse, request_id: str, code: int) -> None:
    assert response.request_id == request_id
    assert response.error_code == code, pb.ErrorCode.Name(response.error_code)
    assert response.error, "every host error response carries human text"
    assert not response.HasField("payload")


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-003", "AWP-RPC-004", "AWP-RPC-011", "AWP-OBS-005")
async def test_request_is_forwarded_and_response_returned(
    host: Host, connect: ConnectWorker
) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    trace = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    await caller.request("c-1", "echo", "key-7", timeout_ms=5000, metadata=trace)
    forwarded = (await server.next()).request
    assert forwarded.target == pb.AgentId(type="echo", key="key-7")
    assert forwarded.payload == payload()
    assert dict(forwarded.metadata) == trace
    assert 1 <= forwarded.timeout_ms <= 5000
    await server.respond(
        forwarded.request_id, pb.Payload(data_type="Pong", data=b"1"), metadata={"m": "v"}
    )
    answer = (await caller.next()).response
    assert answer.request_id == "c-1"
    assert answer.payload == pb.Payload(data_type="Pong", data=b"1")
    assert dict(answer.metadata) == {"m": "v"}
    assert not answer.error
    assert answer.error_code == pb.ERROR_CODE_UNSPECIFIED
    assert host.metrics.rpc_requests == 1
    assert host.metrics.rpc_responses == 1


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-010", "AWP-RPC-011")
async def test_request_without_timeout_gets_the_default(connect: ConnectWorker) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    await caller.request("c-1", "echo")
    forwarded = (await server.next()).request
    assert 1 <= forwarded.timeout_ms <= 60_000


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-004")
async def test_two_callers_with_the_same_request_id_each_get_their_own_reply(
    connect: ConnectWorker,
) -> None:
    server = await _server(connect)
    alice = await connect("alice", hello())
    bob = await connect("bob", hello())
    legacy = await connect("legacy-caller")
    for caller in (alice, bob, legacy):
        await caller.request("1", "echo", caller.client_id)
    forwarded = [(await server.next()).request for _ in range(3)]
    host_ids = [request.request_id for request in forwarded]
    assert len(set(host_ids)) == 3, host_ids
    # Answer in reverse order, each with the key of the caller it came from.
    for request in reversed(forwarded):
        await server.respond(
            request.request_id, pb.Payload(data_type="Pong", data=request.target.key.encode())
        )
    for caller in (alice, bob, legacy):
        answer = (await caller.next()).response
        assert answer.request_id == "1"
        assert answer.payload.data == caller.client_id.encode()


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-004")
async def test_caller_can_reuse_ids_of_completed_requests(connect: ConnectWorker) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    for round_number in range(3):
        await caller.request("same", "echo")
        forwarded = (await server.next()).request
        await server.respond(forwarded.request_id, pb.Payload(data=str(round_number).encode()))
        answer = (await caller.next()).response
        assert answer.request_id == "same"
        assert answer.payload.data == str(round_number).encode()


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-003", "AWP-ERR-002")
async def test_unknown_target_is_answered_at_once(host: Host, connect: ConnectWorker) -> None:
    caller = await connect("caller", hello())
    legacy = await connect("legacy")
    await caller.request("x", "nobody-serves-this")
    _assert_error((await caller.next()).response, "x", pb.ERROR_CODE_UNKNOWN_TARGET)
    await legacy.request("y", "nobody-serves-this")
    # Legacy callers read only `error`, but the code is set as well (AWP-ERR-002).
    _assert_error((await legacy.next()).response, "y", pb.ERROR_CODE_UNKNOWN_TARGET)
    assert host.metrics.rpc_errors == {"ERROR_CODE_UNKNOWN_TARGET": 2}


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-002")
async def test_malformed_requests_are_invalid_request(connect: ConnectWorker) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    await caller.send(
        pb.OpenChannelRequest(
            request=pb.RpcRequest(request_id="", target=pb.AgentId(type="echo"), payload=payload())
        )
    )
    _assert_error((await caller.next()).response, "", pb.ERROR_CODE_INVALID_REQUEST)
    await caller.send(
        pb.OpenChannelRequest(request=pb.RpcRequest(request_id="no-target", payload=payload()))
    )
    _assert_error((await caller.next()).response, "no-target", pb.ERROR_CODE_INVALID_REQUEST)
    await caller.send(
        pb.OpenChannelRequest(
            request=pb.RpcRequest(request_id="no-payload", target=pb.AgentId(type="echo", key="k"))
        )
    )
    _assert_error((await caller.next()).response, "no-payload", pb.ERROR_CODE_INVALID_REQUEST)
    # A request id already in flight on this connection is refused; the first stays pending.
    await caller.request("twice", "echo")
    await caller.request("twice", "echo")
    _assert_error((await caller.next()).response, "twice", pb.ERROR_CODE_INVALID_REQUEST)
    forwarded = (await server.next()).request
    await server.respond(forwarded.request_id, pb.Payload(data=b"first"))
    answer = (await caller.next()).response
    assert answer.request_id == "twice"
    assert answer.payload.data == b"first"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-010", "AWP-RPC-005", "AWP-ERR-004")
async def test_deadline_expiry_answers_caller_and_drops_late_response(
    host: Host, connect: ConnectWorker
) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    await caller.request("slow", "echo", timeout_ms=200)
    forwarded = (await server.next()).request
    _assert_error((await caller.next()).response, "slow", pb.ERROR_CODE_DEADLINE_EXCEEDED)
    await server.respond(forwarded.request_id, pb.Payload(data=b"too late"))
    notice = (await server.next()).notice
    assert notice.code == pb.ERROR_CODE_INVALID_REQUEST
    assert notice.request_id == forwarded.request_id
    assert host.metrics.rpc_late_responses == 1
    # The caller got exactly one response: the next thing it sees is a new request's answer.
    await caller.request("after", "nobody")
    assert (await caller.next()).response.request_id == "after"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-018", "AWP-SHR-004")
async def test_target_disconnect_fails_pending_requests(connect: ConnectWorker) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    await caller.request("a", "echo")
    await caller.request("b", "echo")
    for _ in range(2):
        await server.next()
    await server.close()
    answers = [(await caller.next()).response for _ in range(2)]
    assert sorted(answer.request_id for answer in answers) == ["a", "b"]
    for answer in answers:
        _assert_error(answer, answer.request_id, pb.ERROR_CODE_TARGET_UNAVAILABLE)
    await caller.request("c", "echo")
    _assert_error((await caller.next()).response, "c", pb.ERROR_CODE_UNKNOWN_TARGET)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-005")
async def test_response_from_the_wrong_connection_is_ignored(
    host: Host, connect: ConnectWorker
) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    intruder = await connect("intruder", hello())
    await caller.request("r", "echo")
    forwarded = (await server.next()).request
    await intruder.respond(forwarded.request_id, pb.Payload(data=b"forged"))
    notice = (await intruder.next()).notice
    assert notice.code == pb.ERROR_CODE_INVALID_REQUEST
    assert notice.request_id == forwarded.request_id
    await server.respond(forwarded.request_id, pb.Payload(data=b"genuine"))
    answer = (await caller.next()).response
    assert answer.payload.data == b"genuine"
    assert host.metrics.frames_invalid == 1


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-005")
async def test_response_for_unknown_id_gets_notice(connect: ConnectWorker) -> None:
    worker = await connect("w", hello())
    await worker.respond("never-sent", pb.Payload())
    notice = (await worker.next()).notice
    assert notice.code == pb.ERROR_CODE_INVALID_REQUEST
    assert notice.request_id == "never-sent"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-018")
async def test_caller_disconnect_discards_its_requests(host: Host, connect: ConnectWorker) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    await caller.request("gone", "echo")
    forwarded = (await server.next()).request
    await caller.close()
    await eventually(lambda: host.metrics.connections_open == 1)
    other = await connect("other", hello())
    await other.request("o", "echo")
    forwarded_other = (await server.next()).request
    # The caller left before the answer: the host discards it and tells the server.
    await server.respond(forwarded.request_id, pb.Payload(data=b"nobody listens"))
    notice = (await server.next()).notice
    assert notice.request_id == forwarded.request_id
    await server.respond(forwarded_other.request_id, pb.Payload(data=b"ok"))
    assert (await other.next()).response.payload.data == b"ok"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-ERR-003")
async def test_handler_errors_are_forwarded_with_code(connect: ConnectWorker) -> None:
    server = await _server(connect)
    caller = await connect("caller", hello())
    await caller.request("boom", "echo")
    forwarded = (await server.next()).request
    await server.respond(
        forwarded.request_id, error="it broke", error_code=pb.ERROR_CODE_HANDLER_FAILED
    )
    answer = (await caller.next()).response
    assert answer.request_id == "boom"
    assert answer.error == "it broke"
    assert answer.error_code == pb.ERROR_CODE_HANDLER_FAILED


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-003")
async def test_request_to_own_agent_type_is_delivered_to_self(connect: ConnectWorker) -> None:
    worker = await _server(connect, "self")
    await worker.request("loop", "echo", "k")
    forwarded = (await worker.next()).request
    await worker.respond(forwarded.request_id, pb.Payload(data=b"me"))
    answer = (await worker.next()).response
    assert answer.request_id == "loop"
    assert answer.payload.data == b"me"
