"""Worker cases: RPCs the harness sends to the conformance agent."""

from __future__ import annotations

import asyncio

from google.protobuf import any_pb2

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._harness_host import Connection
from conformance._payloads import JSON, PROTOBUF, decode_payload, json_ping_payload, proto_payload
from conformance._worker_context import WorkerContext
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []


def check_pong(
    ctx: WorkerContext, response: pb.RpcResponse, content_type: str, text: str, seq: int, key: str
) -> None:
    """Decide, each in its own step, that ``response`` is a success (AWP-CNF-003) carrying a
    payload (AWP-RPC-020), in the Ping's encoding (AWP-CNF-003), a Pong (AWP-CNF-004)
    echoing the Ping (AWP-CNF-003)."""
    ctx.decide(
        ("AWP-CNF-003", "AWP-RPC-020"),
        "the Ping is answered with success (empty error, no error_code)",
        response.error == "" and response.error_code == pb.ERROR_CODE_UNSPECIFIED,
        f"error response {response.error!r} ({pb.ErrorCode.Name(response.error_code)}) to a Ping",
    )
    if response.error == "" and response.error_code == pb.ERROR_CODE_UNSPECIFIED:
        ctx.decide(
            "AWP-RPC-020",
            "the successful response carries the handler's reply in payload",
            response.HasField("payload") and response.payload.data_type != "",
            "a successful response without a payload (or with an empty data_type)",
        )
    ctx.decide(
        "AWP-CNF-003",
        "the Pong uses the Ping's encoding",
        response.payload.data_content_type == content_type,
        f"Pong content type {response.payload.data_content_type!r}, expected {content_type!r}",
    )
    pong, problem = decode_payload(response.payload, cp.Pong)
    if not ctx.decide(
        "AWP-CNF-004", "the answer decodes as a Pong", pong is not None, f"not a Pong: {problem}"
    ):
        return
    assert pong is not None
    ctx.decide(
        "AWP-CNF-003",
        "the Pong echoes the Ping's text and seq and names the agent key",
        (pong.text, pong.seq, pong.agent_key) == (text, seq, key),
        f"Pong text/seq/agent_key {(pong.text, pong.seq, pong.agent_key)}, expected "
        f"{(text, seq, key)}",
    )


async def no_second_response(ctx: WorkerContext, conn: Connection, rid: str, key: str) -> None:
    """Decide AWP-RPC-006's "exactly one": after the response to ``rid``, a Ping to the same
    agent is answered (the worker has moved on) and, a short while later, still no second
    response to ``rid`` has arrived."""
    with ctx.step("AWP-RPC-006", "no second response to the request"):
        await ctx.rpc(conn, json_ping_payload("after", 1), key=key)
        await asyncio.sleep(ctx.seconds(0.2))  # a bounded window for a late duplicate
        extra = ctx.host.pending(
            lambda i: (
                i.frame.WhichOneof("message") == "response" and i.frame.response.request_id == rid
            )
        )
        ctx.check(not extra, f"{len(extra)} further responses to {rid}")


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
    with ctx.step("AWP-RPC-006", "a response with the request id", gate=True):
        response = await ctx.rpc(
            conn, json_ping_payload("hello", 7), key="key-json", request_id=rid
        )
    with ctx.step("AWP-PUB-020", "the JSON Pong names its type in data_type"):
        ctx.check(
            response.payload.data_type == "Pong",
            f"data_type {response.payload.data_type!r}, expected 'Pong'",
        )
    check_pong(ctx, response, JSON, "hello", 7, "key-json")
    await no_second_response(ctx, conn, rid, "key-json")


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
    rid = ctx.unique("h")
    with ctx.step("AWP-RPC-006", "a response with the request id", gate=True):
        response = await ctx.rpc(conn, payload, key="key-proto", request_id=rid)
    with ctx.step("AWP-PUB-021", "the protobuf Pong is a typed Any"):
        any_msg = any_pb2.Any()
        any_msg.ParseFromString(response.payload.data)
        ctx.check(
            (response.payload.data_type, any_msg.type_url)
            == (
                "agentworker.conformance.v1.Pong",
                "type.googleapis.com/agentworker.conformance.v1.Pong",
            ),
            f"data_type {response.payload.data_type!r}, type URL {any_msg.type_url!r}",
        )
    check_pong(ctx, response, PROTOBUF, "bin", 11, "key-proto")
    await no_second_response(ctx, conn, rid, "key-proto")


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
    for n, payload in enumerate(bad):
        what = ("unknown data_type", "protobuf data that is not an Any")[n]
        with ctx.step("AWP-RPC-021", f"{what}: answered", gate=True):
            response = await ctx.rpc(conn, payload)
        ctx.decide(
            "AWP-ERR-002", f"{what}: a non-empty error", response.error != "", "empty `error`"
        )
        ctx.decide(
            ("AWP-CNF-006", "AWP-RPC-021"),
            f"{what}: ERROR_CODE_UNSUPPORTED_MESSAGE",
            response.error_code == pb.ERROR_CODE_UNSUPPORTED_MESSAGE,
            f"error_code {pb.ErrorCode.Name(response.error_code)}",
        )
    with ctx.step("AWP-CNF-006", "the worker keeps answering", gate=True):
        response = await ctx.rpc(conn, json_ping_payload("after", 1))
    check_pong(ctx, response, JSON, "after", 1, "k")


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
    with ctx.step("AWP-RPC-006", "the failed call is answered", gate=True):
        response = await ctx.rpc(conn, proto_payload(command), request_id=rid)
    ctx.decide(
        "AWP-CNF-012",
        "the error carries the handler's message",
        message in response.error,
        f"error {response.error!r} does not contain {message!r}",
    )
    ctx.decide(
        ("AWP-ERR-002", "AWP-RPC-021"),
        "ERROR_CODE_HANDLER_FAILED",
        response.error_code == pb.ERROR_CODE_HANDLER_FAILED,
        f"error_code {pb.ErrorCode.Name(response.error_code)}",
    )
    ctx.decide(
        "AWP-RPC-021",
        "an error response carries no payload data",
        not response.payload.data,
        f"{len(response.payload.data)} bytes of payload data",
    )
    await no_second_response(ctx, conn, rid, "k")


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
    with ctx.step(("AWP-RPC-006", "AWP-CONN-011"), "every request is answered", gate=True):
        responses = {rid: await ctx.expect_response(rid, within=10.0) for rid in sent}
    for rid, (protobuf, text, seq, key) in sent.items():
        check_pong(ctx, responses[rid], PROTOBUF if protobuf else JSON, text, seq, key)
    with ctx.step("AWP-CNF-013", "the stall command answers after its stall"):
        stalled = await ctx.expect_response(stall_id, within=5.0)
        result, problem = decode_payload(stalled.payload, cp.CommandResult)
        ctx.check(
            result is not None and result.stalled_ms == 300,
            f"the stall command's answer: {problem or result}",
        )
    with ctx.step("AWP-RPC-006", "no further or unknown responses"):
        await asyncio.sleep(ctx.seconds(0.3))  # a bounded window for late duplicates
        extra = ctx.host.pending(lambda i: i.frame.WhichOneof("message") == "response")
        ctx.check(
            not extra,
            f"{len(extra)} unexpected responses: "
            f"{[i.frame.response.request_id for i in extra][:5]}",
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
    # Step names name the agent by its letter, so that they are the same from run to run.
    for key, value in ((key_x, "value-A"), (key_y, "value-B")):
        with ctx.step("AWP-CNF-014", f"remember at {key[0]}-…", gate=True):
            result = await ctx.command(
                conn, cp.Command(remember=cp.RememberAction(value=value)), key=key
            )
            ctx.check(result.remembered == value, f"remembered {result.remembered!r}")
    for key, value in ((key_x, "value-A"), (key_y, "value-B")):
        with ctx.step(("AWP-REG-004", "AWP-CNF-014"), f"{key[0]}-… recalls its own value"):
            result = await ctx.command(conn, cp.Command(recall=cp.RecallAction()), key=key)
            ctx.check(result.recalled == value, f"recalls {result.recalled!r}, expected {value!r}")


@worker_case(
    "worker/rpc/command-deadline",
    requirements=["AWP-CNF-015", "AWP-CNF-013", "AWP-RPC-021", "AWP-CNF-021", "AWP-CNF-023"],
)
async def command_deadline(ctx: WorkerContext) -> None:
    """Procedure: send Command{stall: 200 ms} (deadline_ms 0: no bound of its own) and check
    its answer; then Command{deadline_ms: 300, stall: 5000 ms}.

    Asserts: the first answer is a success (AWP-CNF-021) in the protobuf encoding
    (AWP-CNF-023), a CommandResult.stalled_ms 200 (AWP-CNF-013); the second is an error
    response (non-empty `error` containing the word `deadline`, error_code HANDLER_FAILED)
    arriving within 300 ms plus 2 s of slack (scaled), not after the
    stall."""
    conn = await ctx.ready()
    stall = cp.Command(
        case_id=ctx.unique("c"), deadline_ms=0, stall=cp.StallAction(duration_ms=200)
    )
    with ctx.step("AWP-CNF-021", "a 200 ms stall with deadline_ms 0 runs to completion"):
        answer = await ctx.rpc(conn, proto_payload(stall), within=10.0)
        ctx.check(
            answer.error == "",
            f"error {answer.error!r} ({pb.ErrorCode.Name(answer.error_code)}); deadline_ms 0 "
            "sets no bound",
        )
        ctx.decide(
            "AWP-CNF-023",
            "the successful command is answered in the protobuf encoding",
            (answer.payload.data_content_type, answer.payload.data_type)
            == (PROTOBUF, cp.CommandResult.DESCRIPTOR.full_name),
            f"answered with content type {answer.payload.data_content_type!r}, data_type "
            f"{answer.payload.data_type!r}",
        )
        with ctx.step("AWP-CNF-013", "the stall answers stalled_ms 200"):
            result, problem = decode_payload(answer.payload, cp.CommandResult)
            ctx.check(result is not None, f"the answer is not a CommandResult: {problem}")
            assert result is not None
            ctx.check(result.stalled_ms == 200, f"stalled_ms {result.stalled_ms}, expected 200")
    command = cp.Command(
        case_id=ctx.unique("c"), deadline_ms=300, stall=cp.StallAction(duration_ms=5000)
    )
    with ctx.step("AWP-CNF-015", "a command past its deadline_ms is answered in time", gate=True):
        response = await ctx.rpc(conn, proto_payload(command), within=2.3)
    ctx.decide(
        "AWP-CNF-015",
        "the answer is an error naming the deadline",
        response.error != "" and "deadline" in response.error.lower(),
        f"error {response.error!r} does not name the deadline",
    )
    ctx.decide(
        ("AWP-CNF-015", "AWP-RPC-021"),
        "ERROR_CODE_HANDLER_FAILED",
        response.error_code == pb.ERROR_CODE_HANDLER_FAILED,
        f"error_code {pb.ErrorCode.Name(response.error_code)}",
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
    with ctx.step("AWP-RPC-006", "the request is answered", gate=True):
        response = await ctx.expect_response(rid)
    ctx.decide(
        "AWP-RPC-021",
        "an error with ERROR_CODE_UNKNOWN_TARGET",
        response.error != "" and response.error_code == pb.ERROR_CODE_UNKNOWN_TARGET,
        f"error {response.error!r}, error_code {pb.ErrorCode.Name(response.error_code)}",
    )
    await no_second_response(ctx, conn, rid, "k")


@worker_case(
    "worker/rpc/payload-reading",
    requirements=["AWP-CNF-024", "AWP-RPC-026", "AWP-RPC-021", "AWP-VER-001"],
)
async def payload_reading(ctx: WorkerContext) -> None:
    """Procedure: send conformance/key-num JSON Pings whose seq is 7, each with one thing a
    reader must take in its stride: a request naming method `ignored.method`, seq written
    `7.0`, seq written `0.7e1`, an unknown member `"note"`; then a JSON Ping whose seq is
    4294967296 (outside int32).

    Asserts: each of the first four is answered with a Pong with seq 7 (a method name, an
    integral number written with a fraction or an exponent, an unknown member change
    nothing), each in a step of its own; the last with ERROR_CODE_UNSUPPORTED_MESSAGE (it
    does not decode as a Ping)."""
    conn = await ctx.ready()
    readings = (
        ("AWP-RPC-026", "a request naming method `ignored.method`", "ignored.method", b"7"),
        ("AWP-CNF-024", "a seq written 7.0", "", b"7.0"),
        ("AWP-CNF-024", "a seq written 0.7e1", "", b"0.7e1"),
        ("AWP-VER-001", "an unknown member", "", b'7, "note": "x"'),
    )
    for requirement, what, method, seq in readings:
        rid = ctx.unique("h")
        request = pb.RpcRequest(
            request_id=rid,
            target=pb.AgentId(type="conformance", key="key-num"),
            method=method,
            payload=pb.Payload(
                data_type="Ping", data_content_type=JSON, data=b'{"text": "n", "seq": ' + seq + b"}"
            ),
        )
        with ctx.step(requirement, f"{what} is answered with its Pong"):
            await conn.write(pb.OpenChannelResponse(request=request))
            response = await ctx.expect_response(rid)
            ctx.check(
                response.error == "",
                f"error {response.error!r} ({pb.ErrorCode.Name(response.error_code)})",
            )
            pong, problem = decode_payload(response.payload, cp.Pong)
            ctx.check(pong is not None, f"not a Pong: {problem}")
            assert pong is not None
            ctx.check((pong.text, pong.seq) == ("n", 7), f"Pong {(pong.text, pong.seq)}")
    big = pb.Payload(
        data_type="Ping", data_content_type=JSON, data=b'{"text": "n", "seq": 4294967296}'
    )
    with ctx.step(("AWP-CNF-024", "AWP-RPC-021"), "a seq outside int32 does not decode"):
        response = await ctx.rpc(conn, big, key="key-num")
        ctx.check(
            response.error_code == pb.ERROR_CODE_UNSUPPORTED_MESSAGE and response.error != "",
            f"a Ping whose seq is outside int32 got {pb.ErrorCode.Name(response.error_code)} "
            f"{response.error!r}, expected ERROR_CODE_UNSUPPORTED_MESSAGE",
        )
