"""Worker cases: RPCs the worker sends (Command.call) to an agent type the harness serves."""

from __future__ import annotations

import asyncio
import json

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._harness_host import Connection
from conformance._payloads import JSON, PROTOBUF, decode_payload, proto_payload
from conformance._worker_context import PEER_TYPE, WorkerContext
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []


def call_command(
    key: str, text: str, seq: int, *, protobuf: bool = False, timeout_ms: int = 5000
) -> cp.Command:
    """Return a Command.call to harness/``key`` with a Ping."""
    return cp.Command(
        call=cp.CallAction(
            target=pb.AgentId(type=PEER_TYPE, key=key),
            ping=cp.Ping(text=text, seq=seq),
            encoding=cp.ENCODING_PROTOBUF if protobuf else cp.ENCODING_JSON,
            timeout_ms=timeout_ms,
        )
    )


def pong_response(request: pb.RpcRequest, ping: cp.Ping) -> pb.RpcResponse:
    """Return the harness agent's Pong to ``request`` in the request's encoding."""
    pong = cp.Pong(text=ping.text, seq=ping.seq, agent_key=request.target.key)
    if request.payload.data_content_type == PROTOBUF:
        payload = proto_payload(pong)
    else:
        data = {"text": pong.text, "seq": pong.seq, "agent_key": pong.agent_key}
        payload = pb.Payload(
            data_type="Pong", data_content_type=JSON, data=json.dumps(data).encode()
        )
    return pb.RpcResponse(request_id=request.request_id, payload=payload)


async def start_call(
    ctx: WorkerContext, conn: Connection, command: cp.Command
) -> tuple[str, pb.RpcRequest, cp.Ping]:
    """Send the Command and wait for the outbound request it causes; return the command's
    request id, the outbound request and its decoded Ping."""
    rid = await ctx.command_later(conn, command, key=ctx.unique("caller"))
    request = await ctx.expect_outbound_request(
        f"outbound request to {PEER_TYPE}/{command.call.target.key}"
    )
    ping, problem = decode_payload(request.payload, cp.Ping)
    ctx.check(
        ping is not None, f"the outbound request's payload is not a Ping: {problem} (AWP-CNF-011)"
    )
    assert ping is not None
    return rid, request, ping


async def outcome(ctx: WorkerContext, rid: str, within: float = 5.0) -> cp.CallOutcome:
    """Wait for the Command's answer and return its CallOutcome."""
    response = await ctx.expect_response(rid, within)
    ctx.check(response.error == "", f"Command.call failed: {response.error!r}")
    result, problem = decode_payload(response.payload, cp.CommandResult)
    ctx.check(
        result is not None and result.WhichOneof("outcome") == "call",
        f"the Command's answer is not a CommandResult.call: {problem}",
    )
    assert result is not None
    return result.call


@worker_case(
    "worker/call/concurrent-out-of-order",
    requirements=["AWP-RPC-001", "AWP-RPC-007", "AWP-CNF-011", "AWP-CONN-002"],
)
async def concurrent_calls(ctx: WorkerContext) -> None:
    """Procedure: send four Command.call (JSON, JSON, protobuf, protobuf; timeout 5000 ms)
    to harness/a..d at once; collect the four outbound requests; answer them with Pongs in
    the reverse order of arrival.

    Asserts: the outbound request ids are non-empty and all distinct (AWP-RPC-001); each
    carries target harness/<key>, timeout_ms > 0 and the Ping of its command; each command's
    CallOutcome holds the Pong of its own Ping, in the encoding it used (the worker matched
    out-of-order responses by request id, AWP-RPC-007)."""
    conn = await ctx.ready()
    pending = []
    for index, key in enumerate("abcd"):
        command = call_command(key, f"call-{key}", index, protobuf=index >= 2)
        pending.append((await ctx.command_later(conn, command, key=f"caller-{key}"), key, index))
    requests = []
    for _ in pending:
        request = await ctx.expect_outbound_request("outbound request (4 expected)")
        requests.append(request)
    ids = [r.request_id for r in requests]
    ctx.check(all(ids), f"an outbound request has an empty request_id: {ids} (AWP-RPC-001)")
    ctx.check(len(set(ids)) == len(ids), f"outbound request ids repeat: {ids} (AWP-RPC-001)")
    for request in requests:
        ctx.check(
            0 < request.timeout_ms <= 5000,
            f"request {request.request_id!r} has timeout_ms {request.timeout_ms}; a conformance "
            "agent's call carries the CallAction's timeout_ms, here 5000 (AWP-CNF-011)",
        )
    for request in reversed(requests):
        ping, problem = decode_payload(request.payload, cp.Ping)
        ctx.check(ping is not None, f"outbound payload is not a Ping: {problem}")
        assert ping is not None
        await conn.write(pb.OpenChannelResponse(response=pong_response(request, ping)))
    for rid, key, index in pending:
        got = await outcome(ctx, rid)
        ctx.check(
            got.error_code == pb.ERROR_CODE_UNSPECIFIED
            and got.pong.text == f"call-{key}"
            and got.pong.seq == index
            and got.pong.agent_key == key,
            f"call to harness/{key}: outcome {got} does not hold its own Pong (AWP-RPC-007)",
        )
        expected = cp.ENCODING_PROTOBUF if index >= 2 else cp.ENCODING_JSON
        ctx.decide(
            "AWP-CNF-011",
            f"call to harness/{key}: the outcome names the encoding used",
            got.encoding == expected,
            f"call to harness/{key}: encoding {cp.Encoding.Name(got.encoding)}",
        )
    since = [c for c in ctx.host.calls if c.at >= conn.opened_at]
    others = sorted({repr(c.client_id) for c in since if c.client_id != conn.client_id})
    ctx.decide(
        "AWP-CONN-002",
        "every call since the channel opened carries the channel's client-id",
        bool(conn.client_id) and not others,
        f"calls with client-id {', '.join(others)}, not {conn.client_id!r}",
    )


async def error_outcome(ctx: WorkerContext, response: pb.RpcResponse) -> cp.CallOutcome:
    conn = await ctx.ready()
    rid, request, _ = await start_call(ctx, conn, call_command(ctx.unique("e"), "err", 1))
    response.request_id = request.request_id
    await conn.write(pb.OpenChannelResponse(response=response))
    return await outcome(ctx, rid)


@worker_case("worker/call/error-code-surfaced", requirements=["AWP-RPC-022", "AWP-ERR-001"])
async def error_code(ctx: WorkerContext) -> None:
    """Procedure: Command.call to harness/e-…; answer the outbound request with `error`
    "no such agent" and ERROR_CODE_UNKNOWN_TARGET.

    Asserts: the CallOutcome has error_code ERROR_CODE_UNKNOWN_TARGET and no Pong."""
    got = await error_outcome(
        ctx, pb.RpcResponse(error="no such agent", error_code=pb.ERROR_CODE_UNKNOWN_TARGET)
    )
    ctx.check(
        got.error_code == pb.ERROR_CODE_UNKNOWN_TARGET and not got.HasField("pong"),
        f"outcome error_code {pb.ErrorCode.Name(got.error_code)}, expected "
        "ERROR_CODE_UNKNOWN_TARGET (AWP-RPC-022, AWP-ERR-001)",
    )


@worker_case("worker/call/legacy-error", requirements=["AWP-ERR-003", "AWP-RPC-022"])
async def legacy_error(ctx: WorkerContext) -> None:
    """Procedure: Command.call; answer with `error` "legacy failure" and no error_code (a
    legacy peer's error).

    Asserts: the CallOutcome has error_code ERROR_CODE_HANDLER_FAILED."""
    got = await error_outcome(ctx, pb.RpcResponse(error="legacy failure"))
    ctx.check(
        got.error_code == pb.ERROR_CODE_HANDLER_FAILED,
        f"outcome error_code {pb.ErrorCode.Name(got.error_code)}, expected "
        "ERROR_CODE_HANDLER_FAILED (AWP-ERR-003, AWP-RPC-022)",
    )


@worker_case("worker/call/no-answer-deadline", requirements=["AWP-RPC-012", "AWP-CNF-011"])
async def no_answer(ctx: WorkerContext) -> None:
    """Procedure: Command.call with timeout_ms 800; never answer the outbound request.

    Asserts: the CallOutcome has ERROR_CODE_DEADLINE_EXCEEDED and arrives no later than the
    timeout plus the 1 s margin plus 1.5 s of slack (scaled) after the outbound request."""
    conn = await ctx.ready()
    rid, request, _ = await start_call(
        ctx, conn, call_command(ctx.unique("n"), "mute", 1, timeout_ms=800)
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    with ctx.step(
        ("AWP-RPC-012", "AWP-CNF-011"), "the outcome arrives within the deadline", gate=True
    ):
        got = await outcome(ctx, rid, within=0.8 + 1.0 + 1.5)
    ctx.check(
        got.error_code == pb.ERROR_CODE_DEADLINE_EXCEEDED,
        f"outcome error_code {pb.ErrorCode.Name(got.error_code)} after "
        f"{loop.time() - started:.1f} s, expected ERROR_CODE_DEADLINE_EXCEEDED "
        "(AWP-RPC-012, AWP-CNF-011)",
    )
    del request


@worker_case("worker/call/unknown-response-id", requirements=["AWP-RPC-008", "AWP-RPC-007"])
async def unknown_response(ctx: WorkerContext) -> None:
    """Procedure: Command.call; before answering, send a response whose request_id the
    worker never used (with an error), then the real Pong.

    Asserts: the worker keeps its channel; the CallOutcome holds the Pong."""
    conn = await ctx.ready()
    rid, request, ping = await start_call(ctx, conn, call_command(ctx.unique("u"), "real", 3))
    stray = pb.RpcResponse(
        request_id=ctx.unique("never-sent"), error="stray", error_code=pb.ERROR_CODE_HANDLER_FAILED
    )
    await conn.write(pb.OpenChannelResponse(response=stray))
    await asyncio.sleep(0.2)
    await conn.write(pb.OpenChannelResponse(response=pong_response(request, ping)))
    got = await outcome(ctx, rid)
    ctx.check(
        got.pong.text == "real" and got.error_code == pb.ERROR_CODE_UNSPECIFIED,
        f"outcome {got} is not the Pong (AWP-RPC-008, AWP-RPC-007)",
    )


@worker_case("worker/call/empty-response", requirements=["AWP-RPC-023", "AWP-RPC-022"])
async def empty_response(ctx: WorkerContext) -> None:
    """Procedure: Command.call; answer the outbound request with a response that has neither
    payload nor error (a legacy peer's answer to a failure without a message).

    Asserts: the CallOutcome has ERROR_CODE_HANDLER_FAILED and no Pong, never a success."""
    got = await error_outcome(ctx, pb.RpcResponse())
    ctx.check(
        got.error_code == pb.ERROR_CODE_HANDLER_FAILED and not got.HasField("pong"),
        f"outcome {pb.ErrorCode.Name(got.error_code)} / pong {got.HasField('pong')}, expected "
        "ERROR_CODE_HANDLER_FAILED (AWP-RPC-023, AWP-RPC-022)",
    )


@worker_case("worker/call/reply-not-a-pong", requirements=["AWP-CNF-011", "AWP-RPC-022"])
async def not_a_pong(ctx: WorkerContext) -> None:
    """Procedure: Command.call; answer the outbound request successfully with a protobuf
    `agentworker.conformance.v1.EventReceipt` (a contract message, but not a Pong).

    Asserts: the CallOutcome has ERROR_CODE_HANDLER_FAILED and no Pong."""
    payload = proto_payload(cp.EventReceipt(text="not a pong"))
    got = await error_outcome(ctx, pb.RpcResponse(payload=payload))
    ctx.check(
        got.error_code == pb.ERROR_CODE_HANDLER_FAILED and not got.HasField("pong"),
        f"outcome {pb.ErrorCode.Name(got.error_code)} / pong {got.HasField('pong')}, expected "
        "ERROR_CODE_HANDLER_FAILED (AWP-CNF-011, AWP-RPC-022)",
    )


@worker_case("worker/call/notice-naming-call", requirements=["AWP-ERR-022", "AWP-ERR-011"])
async def notice_naming_call(ctx: WorkerContext) -> None:
    """Procedure: Command.call to harness/nt-…; once the outbound request arrives, send a
    Notice (ERROR_CODE_INVALID_REQUEST) whose request_id is that request's id, then answer
    the request with a Pong.

    Asserts: the CallOutcome holds the Pong: a notice names a frame the worker sent, never
    ends one of its pending calls."""
    conn = await ctx.ready()
    rid, request, ping = await start_call(ctx, conn, call_command(ctx.unique("nt"), "nt", 4))
    notice = pb.Notice(
        code=pb.ERROR_CODE_INVALID_REQUEST,
        message="a notice that names the pending call",
        request_id=request.request_id,
    )
    await conn.write(pb.OpenChannelResponse(notice=notice))
    await conn.write(pb.OpenChannelResponse(response=pong_response(request, ping)))
    got = await outcome(ctx, rid)
    ctx.check(
        got.HasField("pong") and got.error_code == pb.ERROR_CODE_UNSPECIFIED,
        f"the call ended with {pb.ErrorCode.Name(got.error_code)} {got.error_message!r} after a "
        "Notice named it; notices never fail a pending call (AWP-ERR-022)",
    )
