"""Worker cases: odd but legal input, and malformed input the worker must survive."""

from __future__ import annotations

import asyncio

from agentworker.v1 import agentworker_pb2 as pb
from conformance._payloads import JSON, enum_name, json_ping_payload, ping_event
from conformance._wire import unknown_case_frame
from conformance._worker_context import AGENT_TYPE, BROADCAST_TOPIC, WorkerContext
from conformance.worker_cases._call import call_command, outcome, pong_response, start_call
from conformance.worker_cases._registry import worker_case
from conformance.worker_cases._rpc import check_pong

__all__: list[str] = []


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """Return a length-delimited field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


@worker_case(
    "worker/robustness/unknown-fields-and-cases",
    requirements=["AWP-VER-001", "AWP-CONN-013", "AWP-CONN-010"],
)
async def unknown_fields(ctx: WorkerContext) -> None:
    """Procedure: send (1) a Ping request whose RpcRequest and whose frame both carry
    unknown fields (numbers 40 and 41, varint and length-delimited); (2) a frame with no known
    oneof case (only field 99); (3) a plain Ping.

    Asserts: the worker keeps its channel open, answers both Pings with correct Pongs and
    sends no frame without a oneof case (checked for every case)."""
    conn = await ctx.ready()
    rid = ctx.unique("h")
    request = pb.RpcRequest(
        request_id=rid,
        target=pb.AgentId(type=AGENT_TYPE, key="k"),
        payload=json_ping_payload("u", 1),
    )
    inner = request.SerializeToString() + _varint(40 << 3) + _varint(12345) + _field(41, b"future")
    frame = _field(1, inner) + _field(42, b"future frame field")
    await conn.write(frame)
    with ctx.step("AWP-VER-001", "a Ping with unknown fields is answered", gate=True):
        response = await ctx.expect_response(rid)
    check_pong(ctx, response, JSON, "u", 1, "k")
    await conn.write(unknown_case_frame(99))
    with ctx.step("AWP-CONN-013", "a later Ping is answered", gate=True):
        response = await ctx.rpc(conn, json_ping_payload("v", 2))
    check_pong(ctx, response, JSON, "v", 2, "k")
    ctx.check(not conn.ended.is_set(), "the worker closed its channel (AWP-CONN-013)")


@worker_case(
    "worker/robustness/notice-and-future-enum",
    requirements=["AWP-ERR-011", "AWP-VER-002"],
)
async def notices(ctx: WorkerContext) -> None:
    """Procedure: (v1 workers) send a Notice with ERROR_CODE_INVALID_REQUEST naming an
    unknown request id, and a Notice with a future code (77); then a Ping; then a Command.call
    whose answer is an error with the future error_code 77.

    Asserts: the channel stays open; the Ping is answered; the call's CallOutcome has
    ERROR_CODE_HANDLER_FAILED (an unknown ErrorCode reads as HANDLER_FAILED, AWP-VER-002)."""
    conn = await ctx.ready()
    if conn.hello is not None:
        await conn.write(
            pb.OpenChannelResponse(
                notice=pb.Notice(
                    code=pb.ERROR_CODE_INVALID_REQUEST,
                    message="conformance notice",
                    request_id="nope",
                )
            )
        )
        future = pb.Notice(message="a code from the future")
        future_bytes = future.SerializeToString() + bytes([0x08, 77])  # field 1 (code) = 77
        await conn.write(_varint((11 << 3) | 2) + _varint(len(future_bytes)) + future_bytes)
    check_pong(ctx, await ctx.rpc(conn, json_ping_payload("n", 3)), JSON, "n", 3, "k")
    rid, request, _ = await start_call(ctx, conn, call_command(ctx.unique("f"), "f", 1))
    reply = pb.RpcResponse(request_id=request.request_id, error="future failure")
    raw = reply.SerializeToString() + bytes([0x28, 77])  # field 5 (error_code) = 77
    await conn.write(_field(2, raw))
    got = await outcome(ctx, rid)
    ctx.check(
        got.error_code == pb.ERROR_CODE_HANDLER_FAILED,
        f"future error_code read as {enum_name(pb.ErrorCode, got.error_code)}, "
        "expected ERROR_CODE_HANDLER_FAILED (AWP-VER-002)",
    )
    ctx.check(not conn.ended.is_set(), "the worker closed its channel after a Notice (AWP-ERR-011)")


@worker_case("worker/robustness/four-mib-ping", requirements=["AWP-CONN-003"])
async def large(ctx: WorkerContext) -> None:
    """Procedure: send a JSON Ping whose frame is just under 4 MiB (4,194,304 bytes).

    Asserts: the worker answers with the Pong repeating the whole text (so it also sends a
    frame of about 4 MiB) and keeps its channel."""
    conn = await ctx.ready()
    text = "x" * (4 * 1024 * 1024 - 1024)
    with ctx.step("AWP-CONN-003", "a 4 MiB Ping is answered", gate=True):
        response = await ctx.rpc(conn, json_ping_payload(text, 4), within=20.0)
    ctx.decide(
        "AWP-CONN-003",
        "the 4 MiB Pong repeats the whole text",
        response.payload.data_content_type == JSON and len(response.payload.data) > len(text),
        f"a Pong of {len(response.payload.data)} bytes",
    )
    check_pong(ctx, response, JSON, text, 4, "k")


@worker_case("worker/robustness/duplicate-response", requirements=["AWP-RPC-008", "AWP-RPC-006"])
async def duplicate(ctx: WorkerContext) -> None:
    """Procedure: Command.call; answer the outbound request twice (Pong, then an error with
    the same id); then run a second Command.call and answer it normally; also deliver the same
    Ping event (same event id) twice.

    Asserts: the first outcome is the Pong; the duplicate answer is ignored and the second
    call gets its own Pong; the channel stays open."""
    conn = await ctx.ready()
    rid, request, ping = await start_call(ctx, conn, call_command(ctx.unique("d"), "first", 1))
    await conn.write(pb.OpenChannelResponse(response=pong_response(request, ping)))
    got = await outcome(ctx, rid)
    ctx.check(got.pong.text == "first", f"first outcome {got}")
    dup = pb.RpcResponse(
        request_id=request.request_id, error="duplicate", error_code=pb.ERROR_CODE_HANDLER_FAILED
    )
    await conn.write(pb.OpenChannelResponse(response=dup))
    event = ping_event(BROADCAST_TOPIC, ctx.unique("src"), "dup", 1, protobuf=False)
    await conn.write(pb.OpenChannelResponse(cloud_event=event))
    await conn.write(pb.OpenChannelResponse(cloud_event=event))
    await ctx.expect_receipt(event.id)
    rid2, request2, ping2 = await start_call(ctx, conn, call_command(ctx.unique("d"), "second", 2))
    await conn.write(pb.OpenChannelResponse(response=pong_response(request2, ping2)))
    with ctx.step("AWP-RPC-006", "the second call's command is answered once", gate=True):
        got2 = await outcome(ctx, rid2)
    ctx.check(got2.pong.text == "second", f"second outcome {got2} (AWP-RPC-008)")
    ctx.check(not conn.ended.is_set(), "the worker closed its channel (AWP-RPC-008)")
    with ctx.step("AWP-RPC-006", "no command is answered twice"):
        await asyncio.sleep(ctx.seconds(0.2))  # a bounded window for a late duplicate
        extra = ctx.host.pending(
            lambda i: (
                i.frame.WhichOneof("message") == "response"
                and i.frame.response.request_id in (rid, rid2)
            )
        )
        ctx.check(not extra, f"{len(extra)} further responses to the commands")


@worker_case("worker/robustness/garbage-bytes", requirements=["AWP-CONN-014", "AWP-CONN-020"])
async def garbage(ctx: WorkerContext) -> None:
    """Procedure: write bytes that do not decode as a frame (a length-delimited field whose
    length runs past the end) on the worker's data channel; then watch for 5 s.

    Asserts: the worker does not end as if nothing went wrong: it either keeps running, or
    exits with a non-zero status (AWP-CONN-014: an undecodable frame ends that stream only).
    A worker that declares CAPABILITY_RECONNECT must open a new data channel and be ready
    again (re-registered and re-subscribed) within 10 s (AWP-CONN-020); how it ended, if it
    did, is decided all the same."""
    conn = await ctx.ready()
    await conn.write(b"\x0a\xff\xff\xff\x0f\x01")
    reconnects = conn.hello is not None and pb.CAPABILITY_RECONNECT in conn.hello.capabilities
    if reconnects:
        with ctx.step("AWP-CONN-020", "the worker reconnects and is ready again"):
            await ctx.host.wait_for(
                "new data channel after the undecodable frame",
                lambda: (c := ctx.subject.current_connection()) is not None and c is not conn,
                10.0,
            )
            await ctx.ready()
        status = ctx.subject.returncode  # how the worker ended, if it did, decides below
    else:
        ctx.not_applicable(
            "AWP-CONN-020", "reconnect after the broken channel", "no CAPABILITY_RECONNECT"
        )
        status = await ctx.subject.wait_exit(5.0)
    if status is None:
        ctx.decide("AWP-CONN-014", "the worker keeps running", True, "")
        return
    ctx.decide(
        "AWP-CONN-014",
        "the worker does not end as if nothing went wrong",
        status != 0,
        "the worker exited with status 0 after its data channel broke: an undecodable frame "
        "ends that stream only, and a worker that cannot go on reports the failure",
    )
    if status != 0:
        # An exit that reports the failure is acceptable; restart for the next case.
        ctx.subject.dirty = True
        ctx.subject.expected_exit = True
