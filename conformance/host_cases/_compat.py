"""Host cases: forward compatibility (unknown fields and enum values)."""

from __future__ import annotations

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, rpc_request, type_subscription
from conformance._host_context import HostContext
from conformance._predicates import event_with_id
from conformance._wire import unknown_case_frame
from conformance.host_cases._registry import host_case

__all__: list[str] = []

# An unknown length-delimited field (number 99, empty): what a later version might add.
_UNKNOWN_FIELD = unknown_case_frame(99)


@host_case("host/compat/unknown-fields", requirements=["AWP-VER-001"])
async def unknown_fields(ctx: HostContext) -> None:
    """Procedure: T serves X and subscribes to topic Y. A caller sends a request to X whose
    RpcRequest carries an unknown field, and publishes on Y an event whose CloudEvent carries
    an unknown field. T answers with a response carrying an unknown field.

    Asserts: T receives the request (known fields intact) and the event; the caller receives
    the answer."""
    agent_type = ctx.unique("compat")
    topic = ctx.unique("compat.topic")
    target = await ctx.serving("t", agent_type)
    await target.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    caller = await ctx.connect("c")
    sent = rpc_request("u-1", agent_type, "k", "hello")
    request = pb.RpcRequest.FromString(sent.SerializeToString() + _UNKNOWN_FIELD)
    await caller.request(request)
    got = await target.expect_request()
    ctx.check(
        got.target == sent.target and got.payload == sent.payload,
        f"known fields changed: {got} (AWP-VER-001)",
    )
    plain = event(topic, "k", "x")
    await caller.publish(type(plain).FromString(plain.SerializeToString() + _UNKNOWN_FIELD))
    with ctx.step("AWP-VER-001", "an event with an unknown field is delivered"):
        await target.data.expect(f"event {plain.id}", event_with_id(plain.id))
    reply = pb.RpcResponse(request_id=got.request_id, payload=got.payload)
    await target.respond(pb.RpcResponse.FromString(reply.SerializeToString() + _UNKNOWN_FIELD))
    resp = await caller.expect_response("u-1")
    ctx.check(
        resp.error == "" and resp.payload == sent.payload, f"the answer is {resp} (AWP-VER-001)"
    )


@host_case("host/compat/unknown-enum-values", requirements=["AWP-VER-002"], v1_only=True)
async def unknown_enum_values(ctx: HostContext) -> None:
    """Procedure: a worker's hello announces capability value 999; T serves X; a caller sends
    a request to X; T answers with an error whose error_code is 999.

    Asserts: the channel opens with a welcome that does not list 999; the caller receives
    the error response (error text intact) rather than the frame being rejected."""
    odd = await ctx.connect("odd", hello=ctx.hello((999,)))
    ctx.check(
        odd.welcome is not None, "no welcome for a hello with an unknown capability (AWP-VER-002)"
    )
    assert odd.welcome is not None
    ctx.check(999 not in odd.welcome.capabilities, "the welcome lists capability 999 (AWP-VER-002)")
    agent_type = ctx.unique("enum")
    target = await ctx.serving("t", agent_type)
    await odd.request(rpc_request("e-1", agent_type, "k", "x"))
    got = await target.expect_request()
    await target.respond(
        pb.RpcResponse(
            request_id=got.request_id,
            error="failed with a future code",
            error_code=999,  # type: ignore[arg-type]  # deliberately outside the enum
        )
    )
    resp = await odd.expect_response("e-1")
    ctx.check(
        resp.error == "failed with a future code", f"the error response is {resp} (AWP-VER-002)"
    )
