"""Worker cases: the worker's own inbound bound and mailboxes (spec 12.1, AWP-FLOW-030..)."""

from __future__ import annotations

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._payloads import decode_payload, proto_payload
from conformance._worker_context import WorkerContext, is_response_to
from conformance.worker_cases._call import call_command, outcome, pong_response
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []

BUSY_CALLS = 300


@worker_case(
    "worker/flow/responses-while-busy",
    requirements=["AWP-FLOW-030", "AWP-CNF-011", "AWP-RPC-007"],
)
async def responses_while_busy(ctx: WorkerContext) -> None:
    """Procedure: send 300 Command.call (JSON Ping, timeout 30000 ms) to 300 different agent
    keys back to back, more than the usual bound on a worker's running handlers; answer each
    outbound request with a Pong as soon as it arrives.

    Asserts: every command answers with a CallOutcome holding its own Pong. A worker that
    stops reading while its handlers are busy leaves the responses its running handlers wait
    for unread, and those calls end with their deadline instead (AWP-FLOW-030). A worker
    whose bound is above 300 passes without being put to the test."""
    conn = await ctx.ready()
    pending = []
    for index in range(BUSY_CALLS):
        command = call_command(ctx.unique("t"), f"busy-{index}", index, timeout_ms=30000)
        pending.append((await ctx.command_later(conn, command, key=ctx.unique("b")), index))
    within = ctx.seconds(20.0)
    # A worker that stops reading responses while busy sends no further calls either: the
    # handlers that would make them wait for a free slot.
    with ctx.step(
        "AWP-FLOW-030", f"all {BUSY_CALLS} calls go out while earlier ones wait", gate=True
    ):
        for _ in range(BUSY_CALLS):
            request = await ctx.expect_outbound_request("outbound request of a busy worker", within)
            ping, problem = decode_payload(request.payload, cp.Ping)
            ctx.check(ping is not None, f"outbound payload is not a Ping: {problem}")
            assert ping is not None
            await conn.write(pb.OpenChannelResponse(response=pong_response(request, ping)))
    for rid, index in pending:
        got = await outcome(ctx, rid, within)
        ctx.check(
            got.error_code == pb.ERROR_CODE_UNSPECIFIED and got.pong.text == f"busy-{index}",
            f"call {index} of {BUSY_CALLS}: outcome {got}; the worker did not read the "
            "responses its busy handlers waited for (AWP-FLOW-030)",
        )


@worker_case(
    "worker/flow/deadline-passes-in-mailbox",
    requirements=["AWP-FLOW-033", "AWP-CONN-040", "AWP-CNF-013"],
)
async def deadline_in_mailbox(ctx: WorkerContext) -> None:
    """Procedure: send Command{stall: 1500 ms} to agent `m-…`, then at once a protobuf Ping
    RPC with timeout_ms 300 to the same agent.

    Asserts: the Ping is not answered with success before the stall ends (it waits behind
    the stalled handler, AWP-CONN-040); it is answered with ERROR_CODE_DEADLINE_EXCEEDED (its
    deadline passed while it waited, AWP-FLOW-033); the stall command answers
    CommandResult.stalled_ms 1500 (AWP-CNF-013). Each is decided in a step of its own."""
    conn = await ctx.ready()
    key = ctx.unique("m")
    stall_id = await ctx.command_later(
        conn, cp.Command(stall=cp.StallAction(duration_ms=1500)), key=key
    )
    ping_id = ctx.unique("h")
    await ctx.send_request(
        conn,
        proto_payload(cp.Ping(text="late", seq=1)),
        key=key,
        request_id=ping_id,
        timeout_ms=300,
    )
    ping_item = await ctx.host.expect(
        f"response to request {ping_id!r}", is_response_to(ping_id), ctx.seconds(10.0)
    )
    stall_item = await ctx.host.expect(
        f"response to request {stall_id!r}", is_response_to(stall_id), ctx.seconds(10.0)
    )
    answer, stalled = ping_item.frame.response, stall_item.frame.response
    overlapped = answer.error == "" and ping_item.at < stall_item.at
    ctx.decide(
        "AWP-CONN-040",
        "the Ping's handler does not run while its agent's stalled handler runs",
        not overlapped,
        "the Ping was answered with success before the 1500 ms stall of the same agent "
        "ended: the agent's handlers overlapped",
        gate=True,
    )
    ctx.decide(
        "AWP-FLOW-033",
        "a request whose deadline passed in the queue is answered DEADLINE_EXCEEDED",
        answer.error_code == pb.ERROR_CODE_DEADLINE_EXCEEDED,
        f"a Ping that waited behind a 1500 ms handler of its agent past its 300 ms deadline was "
        f"answered {pb.ErrorCode.Name(answer.error_code)} {answer.error!r}, expected "
        "ERROR_CODE_DEADLINE_EXCEEDED without running its handler",
    )
    result, problem = decode_payload(stalled.payload, cp.CommandResult)
    ctx.decide(
        "AWP-CNF-013",
        "the stall command answers stalled_ms 1500",
        result is not None and result.stalled_ms == 1500,
        f"the stall command's answer: {problem or result}",
    )
