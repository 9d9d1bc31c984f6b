"""Worker cases: W3C trace context (CAPABILITY_TRACE_CONTEXT)."""

from __future__ import annotations

import re

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Level
from conformance._payloads import proto_payload
from conformance._worker_context import AGENT_TYPE, PEER_TYPE, WorkerContext
from conformance.worker_cases._call import call_command, outcome, pong_response
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def _trace_id(value: str) -> str:
    match = _TRACEPARENT.match(value)
    return match.group(1) if match else ""


@worker_case(
    "worker/trace/propagates-traceparent",
    requirements=["AWP-OBS-004"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_TRACE_CONTEXT,
)
async def propagates(ctx: WorkerContext) -> None:
    """Procedure: (CAPABILITY_TRACE_CONTEXT) send a Command.call whose request carries
    `traceparent` (a fresh trace id) and `tracestate` in RpcRequest.metadata; answer the
    outbound call it causes with a Pong; then send a Command.publish (1 event) the same way.

    Asserts: the outbound request's metadata and the published event's `traceparent`
    attribute are well-formed W3C traceparents with the same trace id as the harness's (the
    received context is the parent of the handler's work), and the call completes."""
    conn = await ctx.ready()
    trace_id = ctx.unique("t").encode().hex()[:32].rjust(32, "0")
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"

    async def command_with_trace(command: cp.Command) -> str:
        command.case_id = ctx.unique("cmd")
        rid = ctx.unique("h")
        request = pb.RpcRequest(
            request_id=rid,
            target=pb.AgentId(type=AGENT_TYPE, key=ctx.unique("traced")),
            payload=proto_payload(command),
            metadata={"traceparent": traceparent, "tracestate": "aw=1"},
        )
        request.source.CopyFrom(pb.AgentId(type=PEER_TYPE, key="caller"))
        await conn.write(pb.OpenChannelResponse(request=request))
        return rid

    rid = await command_with_trace(call_command("traced", "t", 1))
    outbound = await ctx.expect_outbound_request(f"outbound request to {PEER_TYPE}/traced")
    sent = outbound.metadata.get("traceparent", "")
    ctx.check(
        _trace_id(sent) == trace_id,
        f"outbound request traceparent {sent!r} does not continue trace {trace_id} (AWP-OBS-004)",
    )
    await conn.write(
        pb.OpenChannelResponse(
            response=pong_response(outbound, cp.Ping(text="t", seq=1)),
        )
    )
    result = await outcome(ctx, rid)
    ctx.check(result.pong.seq == 1, f"the traced call did not complete: {result}")

    topic = ctx.unique("conformance.traced")
    await command_with_trace(
        cp.Command(
            publish=cp.PublishAction(
                topic_type=topic, topic_source="s", count=1, encoding=cp.ENCODING_JSON
            )
        )
    )
    item = await ctx.host.expect(
        "the traced published event",
        lambda i: (
            not i.connection.control
            and i.frame.WhichOneof("message") == "cloud_event"
            and i.frame.cloud_event.type == topic
        ),
    )
    attribute = item.frame.cloud_event.attributes.get("traceparent")
    value = attribute.ce_string if attribute is not None else ""
    ctx.check(
        _trace_id(value) == trace_id,
        f"published event traceparent {value!r} does not continue trace {trace_id} (AWP-OBS-004)",
    )
