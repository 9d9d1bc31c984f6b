"""Worker cases: RPCs the harness sends to the conformance agent."""

from __future__ import annotations

import asyncio

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import CaseFailure
from conformance._payloads import JSON, PROTOBUF, decode_payload, json_ping_payload, proto_payload
from conformance._worker_context import WorkerContext
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []


def check_pong(
    ctx: WorkerContext, response: pb.RpcResponse, content_type: str, text: str, seq: int, key: str
) -> None:
    """Fail unless ``response`` is a successful Pong in ``content_type`` echoing the Ping."""
    ctx.check(
        response.error == "" and response.error_code == pb.ERROR_CODE_UNSPECIFIED,
        f"error response {response.error!r} ({pb.ErrorCode.Name(response.error_code)}) "
        "to a Ping (AWP-CNF-003)",
    )
    ctx.check(
        response.payload.data_content_type == content_type,
        f"Pong content type {response.payload.data_content_type!r}, expected {content_type!r} "
        "(same encoding as the Ping, AWP-CNF-003)",
    )
    pong, problem = decode_payload(response.payload, cp.Pong)
    ctx.check(pong is not None, f"the answer is not a Pong: {problem} (AWP-CNF-004)")
    assert pong is not None
    ctx.check(
        (pong.text, pong.seq, pong.agent_key) == (text, seq, key),
        f"Pong text/seq/agent_key {(pong.text, pong.seq, pong.agent_key)}, expected "
        f"{(text, seq, key)} (AWP-CNF-003)",
    )


@worker_case(
    "worker/rpc/ping/json",
    requirements=["AWP-CNF-003", "AWP-CNF-004", "AWP-RPC-006", "AWP-RPC-020", "AWP-PUB-020"],
)
async def ping_json(ctx: WorkerContext) -> None:
    """Procedure: send request `h-…` to conformance/key-json with a JSON Ping
    {"text": "hello", "seq": 7}.

    Asserts: exactly one response with the same request id; no error; a JSON Pong (data_type
    `Pong`) with text "hello", seq 7 and agent_key "key-json"."""
    conn = await ctx.ready()
    rid = ctx.unique("h")
    response = await ctx.rpc(conn, json_ping_payload("hello", 7), key="key-json", request_id=rid)
    check_pong(ctx, response, JSON, "hello", 7, "key-json")
    await asyncio.sleep(0.3)
    extra = ctx.host.pending(
        lambda i: i.frame.WhichOneof("message") == "response" and i.frame.response.request_id == rid
    )
    ctx.check(not extra, f"{len(extra)} further responses to {rid} (AWP-RPC-006)")


@worker_case(
    "worker/rpc/ping/protobuf",
    requirements=["AWP-CNF-003", "AWP-CNF-004", "AWP-RPC-006", "AWP-PUB-021"],
)
async def ping_protobuf(ctx: WorkerContext) -> None:
    """Procedure: send a request to conformance/key-proto with a protobuf Ping (data_type
    `agentworker.conformance.v1.Ping`, data a serialized Any).

    Asserts: one response with the same request id, no error, a protobuf Pong (content type
    application/x-protobuf, data_type `agentworker.conformance.v1.Pong`, an Any whose type URL
    is type.googleapis.com/agentworker.conformance.v1.Pong) with text, seq and agent_key."""
    conn = await ctx.ready()
    payload = proto_payload(cp.Ping(text="bin", seq=11))
    response = await ctx.rpc(conn, payload, key="key-proto")
    check_pong(ctx, response, PROTOBUF, "bin", 11, "key-proto")


@worker_case(
    "worker/rpc/unsupported-payload",
    requirements=["AWP-CNF-006", "AWP-RPC-021", "AWP-ERR-002"],
)
async def unsupported(ctx: WorkerContext) -> None:
    """Procedure: send a request with a JSON payload of data_type `NoSuchMessage`, then one
    with a protobuf payload whose data is not an Any.

    Asserts: each is answered once with a non-empty `error` and
    ERROR_CODE_UNSUPPORTED_MESSAGE; the worker keeps answering (a Ping afterwards works)."""
    conn = await ctx.ready()
    bad = [
        pb.Payload(data_type="NoSuchMessage", data_content_type=JSON, data=b'{"x": 1}'),
        pb.Payload(
            data_type="agentworker.conformance.v1.Ping",
            data_content_type=PROTOBUF,
            data=b"\xff\xff\xff\xff",
        ),
    ]
    for payload in bad:
        response = await ctx.rpc(conn, payload)
        ctx.check(response.error != "", f"{payload.data_type}: no error (AWP-ERR-002)")
        ctx.check(
            response.error_code == pb.ERROR_CODE_UNSUPPORTED_MESSAGE,
            f"{payload.data_type}: error_code {pb.ErrorCode.Name(response.error_code)}, "
            "expected ERROR_CODE_UNSUPPORTED_MESSAGE (AWP-CNF-006, AWP-RPC-021)",
        )
    check_pong(ctx, await ctx.rpc(conn, json_ping_payload("after", 1)), JSON, "after", 1, "k")


@worker_case(
    "worker/rpc/handler-failure",
    requirements=["AWP-CNF-012", "AWP-RPC-021", "AWP-ERR-002", "AWP-RPC-006"],
)
async def handler_failure(ctx: WorkerContext) -> None:
    """Procedure: send Command{fail: {message: "boom-<unique>"}}.

    Asserts: one response with the request id, a non-empty `error` containing the message,
    ERROR_CODE_HANDLER_FAILED and no payload data; no second response follows (AWP-RPC-006)."""
    conn = await ctx.ready()
    message = ctx.unique("boom")
    command = cp.Command(case_id=ctx.unique("c"), fail=cp.FailAction(message=message))
    rid = ctx.unique("h")
    response = await ctx.rpc(conn, proto_payload(command), request_id=rid)
    ctx.check(
        message in response.error,
        f"error {response.error!r} does not contain {message!r} (AWP-CNF-012)",
    )
    ctx.check(
        response.error_code == pb.ERROR_CODE_HANDLER_FAILED,
        f"error_code {pb.ErrorCode.Name(response.error_code)}, expected "
        "ERROR_CODE_HANDLER_FAILED (AWP-ERR-002)",
    )
    try:
        again = await ctx.expect_response(rid, within=0.3)
    except CaseFailure:
        return  # answered exactly once
    ctx.check(False, f"a second response to the failed request: {again} (AWP-RPC-006)")


@worker_case(
    "worker/rpc/concurrent-requests",
    requirements=["AWP-RPC-006", "AWP-CNF-003", "AWP-CONN-011", "AWP-CNF-013"],
)
async def concurrent(ctx: WorkerContext) -> None:
    """Procedure: write 50 Ping requests (alternating JSON and protobuf, 10 agent keys,
    distinct request ids) back to back without waiting, plus a stalled Command (300 ms) first.

    Asserts: every request is answered exactly once, with its own request id and the Pong for
    its own Ping (text and seq); no response carries an id the harness did not send."""
    conn = await ctx.ready()
    stall = cp.Command(stall=cp.StallAction(duration_ms=300))
    stall_id = await ctx.command_later(conn, stall, key="slow")
    sent: dict[str, tuple[bool, str, int, str]] = {}
    for seq in range(50):
        rid = ctx.unique("c")
        protobuf = seq % 2 == 1
        key = f"k{seq % 10}"
        text = f"t{seq}"
        payload = (
            proto_payload(cp.Ping(text=text, seq=seq)) if protobuf else json_ping_payload(text, seq)
        )
        sent[rid] = (protobuf, text, seq, key)
        await ctx.send_request(conn, payload, key=key, request_id=rid)
    for rid, (protobuf, text, seq, key) in sent.items():
        response = await ctx.expect_response(rid, within=10.0)
        check_pong(ctx, response, PROTOBUF if protobuf else JSON, text, seq, key)
    stalled = await ctx.expect_response(stall_id, within=5.0)
    result, problem = decode_payload(stalled.payload, cp.CommandResult)
    ctx.check(
        result is not None and result.stalled_ms == 300,
        f"the stall command's answer: {problem or result} (AWP-CNF-013)",
    )
    await asyncio.sleep(0.3)
    extra = ctx.host.pending(lambda i: i.frame.WhichOneof("message") == "response")
    ctx.check(
        not extra,
        f"{len(extra)} unexpected responses: {[i.frame.response.request_id for i in extra][:5]}",
    )


@worker_case(
    "worker/rpc/agent-instance-per-key",
    requirements=["AWP-REG-004", "AWP-CNF-014"],
)
async def instance_per_key(ctx: WorkerContext) -> None:
    """Procedure: Command.remember value A at conformance/x-…, value B at conformance/y-…;
    then Command.recall at x-… and at y-….

    Asserts: x-… recalls A and y-… recalls B (one agent instance per AgentId, kept across
    messages)."""
    conn = await ctx.ready()
    key_x, key_y = ctx.unique("x"), ctx.unique("y")
    for key, value in ((key_x, "value-A"), (key_y, "value-B")):
        result = await ctx.command(
            conn, cp.Command(remember=cp.RememberAction(value=value)), key=key
        )
        ctx.check(
            result.remembered == value, f"{key}: remembered {result.remembered!r} (AWP-CNF-014)"
        )
    for key, value in ((key_x, "value-A"), (key_y, "value-B")):
        result = await ctx.command(conn, cp.Command(recall=cp.RecallAction()), key=key)
        ctx.check(
            result.recalled == value,
            f"{key} recalls {result.recalled!r}, expected {value!r} (AWP-REG-004, AWP-CNF-014)",
        )


@worker_case(
    "worker/rpc/command-deadline", requirements=["AWP-CNF-015", "AWP-CNF-013", "AWP-RPC-021"]
)
async def command_deadline(ctx: WorkerContext) -> None:
    """Procedure: send Command{stall: 200 ms} and check its answer; then
    Command{deadline_ms: 300, stall: 5000 ms}.

    Asserts: the first answer is CommandResult.stalled_ms 200; the second is an error
    response (non-empty `error` containing the word `deadline`, error_code HANDLER_FAILED)
    arriving within 300 ms plus 2 s of slack (scaled), not after the
    stall."""
    conn = await ctx.ready()
    result = await ctx.command(conn, cp.Command(stall=cp.StallAction(duration_ms=200)))
    ctx.check(
        result.stalled_ms == 200, f"stalled_ms {result.stalled_ms}, expected 200 (AWP-CNF-013)"
    )
    command = cp.Command(
        case_id=ctx.unique("c"), deadline_ms=300, stall=cp.StallAction(duration_ms=5000)
    )
    response = await ctx.rpc(conn, proto_payload(command), within=2.3)
    ctx.check(response.error != "", "a command past its deadline_ms succeeded (AWP-CNF-015)")
    ctx.check(
        "deadline" in response.error.lower(),
        f"error {response.error!r} does not name the deadline (AWP-CNF-015)",
    )
    ctx.check(
        response.error_code == pb.ERROR_CODE_HANDLER_FAILED,
        f"error_code {pb.ErrorCode.Name(response.error_code)}, expected "
        "ERROR_CODE_HANDLER_FAILED (AWP-CNF-015)",
    )


@worker_case("worker/rpc/unknown-agent-type", requirements=["AWP-RPC-021", "AWP-RPC-006"])
async def unknown_agent_type(ctx: WorkerContext) -> None:
    """Procedure: send a Ping request whose target type `no.such.type` the worker does not
    serve.

    Asserts: one response with the request id, a non-empty `error` and
    ERROR_CODE_UNKNOWN_TARGET."""
    conn = await ctx.ready()
    rid = ctx.unique("h")
    request = pb.RpcRequest(
        request_id=rid,
        target=pb.AgentId(type="no.such.type", key="k"),
        payload=json_ping_payload("lost", 1),
    )
    await conn.write(pb.OpenChannelResponse(request=request))
    response = await ctx.expect_response(rid)
    ctx.check(response.error != "", "no error for an unserved agent type (AWP-RPC-021)")
    ctx.check(
        response.error_code == pb.ERROR_CODE_UNKNOWN_TARGET,
        f"error_code {pb.ErrorCode.Name(response.error_code)}, expected "
        "ERROR_CODE_UNKNOWN_TARGET (AWP-RPC-021)",
    )
