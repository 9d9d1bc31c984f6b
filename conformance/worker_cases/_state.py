"""Worker cases: agent state over the control channel (CAPABILITY_STATE)."""

from __future__ import annotations

import functools

from google.protobuf import any_pb2

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Level
from conformance._harness_host import Connection, Inbound
from conformance._worker_context import AGENT_TYPE, WorkerContext
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []


def _answers(rpc_id: str, item: Inbound) -> bool:
    """Match the worker's control-channel answer to ``rpc_id``."""
    return bool(item.connection.control and item.frame.rpc_id == rpc_id)


V1 = "type.googleapis.com/agentworker.v1."
LEGACY = "type.googleapis.com/agents."


async def control_call(
    ctx: WorkerContext,
    control: Connection,
    key: str,
    message: pb.SaveStateRequest | pb.LoadStateRequest,
    prefix: str,
) -> any_pb2.Any:
    """Send a state request for conformance/``key`` on the control channel; return the
    answer's rpc_message."""
    rpc_id = ctx.unique("ctl")
    packed = any_pb2.Any(
        type_url=prefix + type(message).__name__, value=message.SerializeToString()
    )
    await control.write(
        pb.OpenControlChannelResponse(
            rpc_id=rpc_id,
            destination=f"agentid={AGENT_TYPE}/{key}",
            respond_to="clientid=conformance-harness",
            rpc_message=packed,
        )
    )
    item = await ctx.host.expect(
        f"control answer to {rpc_id}",
        functools.partial(_answers, rpc_id),
        5.0,
    )
    answer: any_pb2.Any = item.frame.rpc_message
    return answer


def decode(
    ctx: WorkerContext,
    packed: any_pb2.Any,
    kind: type[pb.SaveStateResponse] | type[pb.LoadStateResponse],
    prefix: str,
) -> object:
    """Decode a state answer, which must use the type URL form of the request (AWP-CTL-002)."""
    name = kind.DESCRIPTOR.name
    ctx.check(
        packed.type_url == prefix + name,
        f"control answer type_url {packed.type_url!r}, expected {prefix + name!r} (the form "
        "the request used, AWP-CTL-002)",
    )
    message = kind.FromString(packed.value)
    ctx.check(not message.error, f"{name} error {message.error!r} (AWP-CTL-001)")
    return message


async def find_control(ctx: WorkerContext, conn: Connection) -> Connection:
    """Wait for the worker's open control channel (AWP-CTL-001)."""
    control: Connection = await ctx.host.wait_for(
        "control channel of the worker",
        lambda: next(
            (
                c
                for c in reversed(ctx.host.connections)
                if c.control and c.client_id == conn.client_id and not c.ended.is_set()
            ),
            None,
        ),
        5.0,
    )
    return control


async def round_trip(ctx: WorkerContext, prefix: str) -> None:
    conn = await ctx.ready()
    with ctx.step(("AWP-CTL-001", "AWP-CONN-009"), "the worker has a control channel", gate=True):
        control = await find_control(ctx, conn)
    key_x, key_y = ctx.unique("x"), ctx.unique("y")
    value = ctx.unique("value")
    result = await ctx.command(conn, cp.Command(remember=cp.RememberAction(value=value)), key=key_x)
    ctx.check(result.remembered == value, f"remembered {result.remembered!r} (AWP-CNF-014)")
    with ctx.step(("AWP-CTL-001", "AWP-CTL-003"), "SaveStateRequest is answered", gate=True):
        answer = await control_call(
            ctx,
            control,
            key_x,
            pb.SaveStateRequest(agent_id=pb.AgentId(type=AGENT_TYPE, key=key_x)),
            prefix,
        )
    saved = decode(ctx, answer, pb.SaveStateResponse, prefix)
    assert isinstance(saved, pb.SaveStateResponse)
    with ctx.step(("AWP-CTL-001", "AWP-CTL-003"), "LoadStateRequest is answered", gate=True):
        answer = await control_call(
            ctx,
            control,
            key_y,
            pb.LoadStateRequest(agent_id=pb.AgentId(type=AGENT_TYPE, key=key_y), state=saved.state),
            prefix,
        )
    decode(ctx, answer, pb.LoadStateResponse, prefix)
    recalled = await ctx.command(conn, cp.Command(recall=cp.RecallAction()), key=key_y)
    ctx.check(
        recalled.recalled == value,
        f"agent {key_y} recalls {recalled.recalled!r} after loading {key_x}'s state "
        f"{saved.state!r}; expected {value!r} (AWP-CTL-001, AWP-CNF-014)",
    )


@worker_case(
    "worker/state/save-load",
    requirements=["AWP-CTL-001", "AWP-CNF-014", "AWP-CONN-009", "AWP-CTL-003", "AWP-CTL-008"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_STATE,
)
async def save_load(ctx: WorkerContext) -> None:
    """Procedure: (CAPABILITY_STATE) Command.remember a fresh value at conformance/x-…; on the
    worker's control channel send SaveStateRequest for x (type URL
    `type.googleapis.com/agentworker.v1.SaveStateRequest`), then LoadStateRequest with that
    state into conformance/y-…; Command.recall at y. Then send SaveStateRequest for
    conformance/z-…, a key no message has reached yet.

    Asserts: the worker has a control channel; both answers carry the same rpc_id, the
    matching response type (with the v1 type URL) and no error; y recalls the value; the
    save for z is answered without an error (the agent is created, AWP-CTL-008)."""
    await round_trip(ctx, V1)
    conn = await ctx.ready()
    control = await find_control(ctx, conn)
    fresh = ctx.unique("z")
    request = pb.SaveStateRequest(agent_id=pb.AgentId(type=AGENT_TYPE, key=fresh))
    answer = await control_call(ctx, control, fresh, request, V1)
    saved = pb.SaveStateResponse.FromString(answer.value)
    ctx.check(
        not saved.error,
        f"saving a key never seen answered error {saved.error!r}; the agent is created as for "
        "any message (AWP-CTL-008)",
    )


@worker_case(
    "worker/state/legacy-type-urls",
    requirements=["AWP-CTL-002", "AWP-CTL-001"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_STATE,
)
async def legacy_urls(ctx: WorkerContext) -> None:
    """Procedure: as worker/state/save-load, with the legacy type URLs
    `type.googleapis.com/agents.SaveStateRequest` / `agents.LoadStateRequest`.

    Asserts: the worker accepts them and answers with the legacy type URLs
    (`agents.SaveStateResponse`, `agents.LoadStateResponse`); the round trip restores the
    value."""
    await round_trip(ctx, LEGACY)


@worker_case(
    "worker/state/unknown-agent",
    requirements=["AWP-CTL-005"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_STATE,
)
async def unknown_agent(ctx: WorkerContext) -> None:
    """Procedure: (CAPABILITY_STATE) on the control channel send SaveStateRequest and
    LoadStateRequest for agent `no.such.type/k`, a type the worker does not serve.

    Asserts: each is answered (same rpc_id) with a non-empty `error` and
    ERROR_CODE_HANDLER_FAILED."""
    conn = await ctx.ready()
    control = await find_control(ctx, conn)
    agent = pb.AgentId(type="no.such.type", key="k")
    for message in (
        pb.SaveStateRequest(agent_id=agent),
        pb.LoadStateRequest(agent_id=agent, state="{}"),
    ):
        rpc_id = ctx.unique("ctl")
        name = type(message).__name__
        packed = any_pb2.Any(type_url=V1 + name, value=message.SerializeToString())
        await control.write(
            pb.OpenControlChannelResponse(
                rpc_id=rpc_id,
                destination="agentid=no.such.type/k",
                respond_to="clientid=conformance-harness",
                rpc_message=packed,
            )
        )
        item = await ctx.host.expect(
            f"control answer to {rpc_id}",
            functools.partial(_answers, rpc_id),
            5.0,
        )
        kind = pb.SaveStateResponse if name == "SaveStateRequest" else pb.LoadStateResponse
        answer = kind.FromString(item.frame.rpc_message.value)
        ctx.check(
            bool(answer.error) and answer.error_code == pb.ERROR_CODE_HANDLER_FAILED,
            f"{name} for an unserved agent answered error {answer.error!r} "
            f"{pb.ErrorCode.Name(answer.error_code)}, expected ERROR_CODE_HANDLER_FAILED "
            "(AWP-CTL-005)",
        )
