"""Host cases: the control channel."""

from __future__ import annotations

from google.protobuf import any_pb2

from agentworker.v1 import agentworker_pb2 as pb
from conformance._host_context import HostContext
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case("host/control/unknown-target", requirements=["AWP-CTL-004", "AWP-CTL-002"])
async def control_unknown_target(ctx: HostContext) -> None:
    """Procedure: worker W opens its control channel and sends a SaveStateRequest (`rpc_id`
    `c1`) to `agentid=<unregistered type>/k`, `respond_to` `clientid=<W>`.

    Asserts: W receives, within 2 s, a control frame with `rpc_id` `c1` whose message is a
    SaveStateResponse (type URL in W's form) with a non-empty `error` and, on v1 runs,
    ERROR_CODE_UNKNOWN_TARGET."""
    worker = await ctx.connect("w")
    control = await worker.open_control()
    nobody = ctx.unique("nobody")
    request = pb.SaveStateRequest(agent_id=pb.AgentId(type=nobody, key="k"))
    prefix = "type.googleapis.com/" + ("agents." if ctx.legacy else "agentworker.v1.")
    message = any_pb2.Any(type_url=prefix + "SaveStateRequest", value=request.SerializeToString())
    await control.write(
        pb.OpenControlChannelRequest(
            rpc_id="c1",
            destination=f"agentid={nobody}/k",
            respond_to=f"clientid={worker.client_id}",
            rpc_message=message,
        )
    )
    frame = await control.expect(
        "the control response for c1", lambda f: f.rpc_id == "c1", within=2.0
    )
    url = frame.rpc_message.type_url
    ctx.check(url == prefix + "SaveStateResponse", f"response type URL {url!r}")
    response = pb.SaveStateResponse.FromString(frame.rpc_message.value)
    ctx.check(response.error != "", "the SaveStateResponse has no error")
    if not ctx.legacy:
        ctx.check(
            response.error_code == pb.ERROR_CODE_UNKNOWN_TARGET,
            f"error_code {pb.ErrorCode.Name(response.error_code)}",
        )
