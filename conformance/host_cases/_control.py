"""Host cases: the control channel."""

from __future__ import annotations

import asyncio
import functools

import grpc
from google.protobuf import any_pb2

from agentworker.v1 import agentworker_pb2 as pb
from conformance._host_context import HostContext
from conformance._stream import FrameStream
from conformance._wire import CONTROL_TIMEOUT_KEY
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
    with ctx.step("AWP-CTL-004", "the requester is answered within 2 s", gate=True):
        frame = await control.expect(
            "the control response for c1", lambda f: f.rpc_id == "c1", within=2.0
        )
    url = frame.rpc_message.type_url
    ctx.decide(
        "AWP-CTL-002",
        "the response uses the requester's type URL form",
        url == prefix + "SaveStateResponse",
        f"response type URL {url!r}",
    )
    response = pb.SaveStateResponse.FromString(frame.rpc_message.value)
    ctx.decide(
        "AWP-CTL-004",
        "the response is an error",
        response.error != "",
        "the SaveStateResponse has no error",
    )
    if not ctx.legacy:
        ctx.decide(
            "AWP-CTL-004",
            "error_code ERROR_CODE_UNKNOWN_TARGET",
            response.error_code == pb.ERROR_CODE_UNKNOWN_TARGET,
            f"error_code {pb.ErrorCode.Name(response.error_code)}",
        )


@host_case("host/control/routing", requirements=["AWP-CTL-003", "AWP-CTL-002", "AWP-VER-019"])
async def control_routing(ctx: HostContext) -> None:
    """Procedure: worker S serves type T and opens its control channel. A legacy worker R (no
    hello) opens its data and control channels and sends a SaveStateRequest, `rpc_id` `c1`,
    to `agentid=T/k`, with a forged `respond_to` and the legacy type URL. S answers with a
    SaveStateResponse (state `s1`) to `clientid=<R>`.

    Asserts: the host accepts both control channels (S's hello lists no capability, R is a
    legacy worker) and keeps them open;
    S receives the request with `respond_to` `clientid=<R>` (overwritten), the same
    SaveStateRequest, in S's type URL form; R receives the response with `rpc_id` `c1`,
    state `s1`, under the legacy type URL."""
    agent_type = ctx.unique("stateful")
    server = await ctx.serving("s", agent_type)
    requester = ctx.worker("r", hello=None)
    await requester.open()
    await requester.register(ctx.unique("r"))  # makes sure the host knows R's data channel
    with ctx.step("AWP-VER-019", "control channels need no capability", gate=True):
        server_control = await server.open_control()
        control = await requester.open_control()
        await _accepted(ctx, {"S (no CAPABILITY_STATE)": server_control, "R (legacy)": control})
    legacy_prefix = "type.googleapis.com/agents."
    server_prefix = legacy_prefix if ctx.legacy else "type.googleapis.com/agentworker.v1."
    request = pb.SaveStateRequest(agent_id=pb.AgentId(type=agent_type, key="k"))
    await control.write(
        pb.OpenControlChannelRequest(
            rpc_id="c1",
            destination=f"agentid={agent_type}/k",
            respond_to="clientid=forged",
            rpc_message=any_pb2.Any(
                type_url=legacy_prefix + "SaveStateRequest", value=request.SerializeToString()
            ),
        )
    )
    with ctx.step("AWP-CTL-003", "the request reaches S", gate=True):
        got = await server_control.expect("the routed SaveStateRequest", lambda f: True)
    ctx.decide(
        "AWP-CTL-003",
        "respond_to is overwritten with the requester's client-id",
        got.respond_to == f"clientid={requester.client_id}",
        f"respond_to {got.respond_to!r} was not overwritten with the requester's client-id",
    )
    url = got.rpc_message.type_url
    ctx.decide(
        "AWP-CTL-002",
        "S receives its own type URL form",
        url == server_prefix + "SaveStateRequest",
        f"S received type URL {url!r}",
    )
    ctx.decide(
        "AWP-CTL-003",
        "the SaveStateRequest is unchanged",
        pb.SaveStateRequest.FromString(got.rpc_message.value) == request,
        "the SaveStateRequest changed in transit",
    )
    answer = pb.SaveStateResponse(state="s1")
    await server_control.write(
        pb.OpenControlChannelRequest(
            rpc_id=got.rpc_id,
            destination=f"clientid={requester.client_id}",
            rpc_message=any_pb2.Any(
                type_url=server_prefix + "SaveStateResponse", value=answer.SerializeToString()
            ),
        )
    )
    with ctx.step("AWP-CTL-003", "R receives S's response", gate=True):
        frame = await control.expect("the SaveStateResponse for c1", lambda f: f.rpc_id == "c1")
    url = frame.rpc_message.type_url
    ctx.decide(
        "AWP-CTL-002",
        "R receives the legacy type URL form",
        url == legacy_prefix + "SaveStateResponse",
        f"R received type URL {url!r}",
    )
    response = pb.SaveStateResponse.FromString(frame.rpc_message.value)
    ctx.decide(
        "AWP-CTL-003",
        "the response is S's",
        response.state == "s1" and not response.error,
        f"R received {response}",
    )


async def _accepted(
    ctx: HostContext, streams: dict[str, FrameStream[pb.OpenControlChannelResponse]]
) -> None:
    """Fail unless each control channel stays open: a host that refuses one ends its call at
    once, so each is given a second (scaled) to end."""
    ends = await asyncio.gather(*(stream.wait_end(within=1.0) for stream in streams.values()))
    for (label, stream), code in zip(streams.items(), ends, strict=True):
        ctx.check(
            code is None,
            f"{label}: the host ended the control channel with {code.name if code else '?'} "
            f"{stream.end_details!r}",
        )


def _has_rpc_id(rpc_id: str, frame: pb.OpenControlChannelResponse) -> bool:
    return frame.rpc_id == rpc_id


def _save_request(
    agent_type: str, rpc_id: str, client_id: str, prefix: str
) -> pb.OpenControlChannelRequest:
    request = pb.SaveStateRequest(agent_id=pb.AgentId(type=agent_type, key="k"))
    return pb.OpenControlChannelRequest(
        rpc_id=rpc_id,
        destination=f"agentid={agent_type}/k",
        respond_to=f"clientid={client_id}",
        rpc_message=any_pb2.Any(
            type_url=prefix + "SaveStateRequest", value=request.SerializeToString()
        ),
    )


@host_case(
    "host/control/without-data-channel",
    requirements=["AWP-CTL-006", "AWP-CTL-007", "AWP-CTL-004"],
)
async def control_without_data_channel(ctx: HostContext) -> None:
    """Procedure: worker W opens only a control channel, without a hello and without a data
    channel, and sends SaveStateRequests to an unregistered type: `c1` with the v1 type URL,
    `c2` with the legacy one. A second control channel is then opened with W's client-id,
    and W sends `c3` on its first one.

    Asserts: `c1` and `c2` are both answered under the legacy type URL (W does not speak v1),
    each a SaveStateResponse with an error; the second control channel ends with
    ALREADY_EXISTS; `c3` is still answered on the first."""
    worker = ctx.worker("w")
    control = await worker.open_control()
    nobody = ctx.unique("nobody")
    legacy = "type.googleapis.com/agents."
    forms = {"c1": "type.googleapis.com/agentworker.v1.", "c2": legacy}
    for rpc_id, prefix in forms.items():
        await control.write(_save_request(nobody, rpc_id, worker.client_id or "", prefix))
        with ctx.step("AWP-CTL-004", f"{rpc_id} is answered within 2 s", gate=True):
            frame = await control.expect(
                f"the control answer for {rpc_id}", functools.partial(_has_rpc_id, rpc_id), 2.0
            )
        url = frame.rpc_message.type_url
        ctx.decide(
            "AWP-CTL-006",
            f"{rpc_id} ({'v1' if prefix != legacy else 'legacy'} form) is answered in the "
            "legacy form",
            url == legacy + "SaveStateResponse",
            f"{rpc_id}: the host answered under {url!r}; a requester that sent no hello gets "
            "the legacy form",
        )
        answer = pb.SaveStateResponse.FromString(frame.rpc_message.value)
        ctx.decide(
            "AWP-CTL-004",
            f"{rpc_id}'s answer is an error",
            answer.error != "",
            f"{rpc_id}: the answer has no error",
        )
    second = ctx.worker("w-again", client_id=worker.client_id)
    again = await second.open_control()
    code = await again.wait_end(within=2.0)
    ctx.decide(
        "AWP-CTL-007",
        "a second control channel for the client-id ends with ALREADY_EXISTS",
        code is grpc.StatusCode.ALREADY_EXISTS,
        f"a second control channel for one client-id ended with "
        f"{code.name if code else 'nothing (still open)'}",
    )
    with ctx.step("AWP-CTL-007", "the first control channel is left untouched"):
        await control.write(_save_request(nobody, "c3", worker.client_id or "", forms["c1"]))
        await control.expect("the control answer for c3", lambda f: f.rpc_id == "c3", within=2.0)


_STATED_TIMEOUT_MS = 400
# The longest host default the case waits for; a longer one leaves that step not applicable.
_LONGEST_DEFAULT_MS = 3000


def _state_request(
    rpc_id: str, agent: pb.AgentId, client_id: str, load: bool
) -> pb.OpenControlChannelRequest:
    """Return a v1 SaveStateRequest (or LoadStateRequest) frame for ``agent``."""
    name = "LoadStateRequest" if load else "SaveStateRequest"
    body = (
        pb.LoadStateRequest(agent_id=agent, state="s")
        if load
        else pb.SaveStateRequest(agent_id=agent)
    )
    return pb.OpenControlChannelRequest(
        rpc_id=rpc_id,
        destination=f"agentid={agent.type}/{agent.key}",
        respond_to=f"clientid={client_id}",
        rpc_message=any_pb2.Any(
            type_url="type.googleapis.com/agentworker.v1." + name, value=body.SerializeToString()
        ),
    )


def _deadline_answer(frame: pb.OpenControlChannelResponse, load: bool) -> str | None:
    """Return why ``frame`` is not a deadline answer of the matching type, or None if it is."""
    want = "LoadStateResponse" if load else "SaveStateResponse"
    if frame.rpc_message.type_url.rpartition(".")[2] != want:
        return f"{frame.rpc_id} was answered with {frame.rpc_message.type_url!r}, not a {want}"
    body = (pb.LoadStateResponse if load else pb.SaveStateResponse).FromString(
        frame.rpc_message.value
    )
    if not body.error or body.error_code != pb.ERROR_CODE_DEADLINE_EXCEEDED:
        return (
            f"{frame.rpc_id} was answered with error {body.error!r}, error_code "
            f"{pb.ErrorCode.Name(body.error_code)}; wanted ERROR_CODE_DEADLINE_EXCEEDED"
        )
    return None


@host_case(
    "host/control/deadline",
    requirements=["AWP-CTL-011", "AWP-CTL-004", "AWP-CTL-013", "AWP-CTL-012"],
    v1_only=True,
)
async def control_deadline(ctx: HostContext) -> None:
    """Procedure: worker S serves type T and opens its control channel. Requester R serves
    type U and opens its control channel with `agentworker-control-timeout-ms` 400; it sends
    a SaveStateRequest `c1` to `agentid=T/k` and a LoadStateRequest `c2` to `agentid=T/k2`.
    S receives both and holds them until R has its answers, then answers both late and sends
    a SaveStateRequest `c3` to `agentid=U/k` on the same control channel. Workers X and Y open
    control channels with the control timeouts `0` and `soon`. When the welcome's
    default_rpc_timeout_ms is at most 3000 ms, requester D opens a control channel without a
    control timeout and sends a SaveStateRequest to T, which S holds.

    Asserts: R receives for each of `c1` and `c2`, no sooner than 0.35 s and within 2 s after
    its deadline, an answer of the matching response type with a non-empty error and
    ERROR_CODE_DEADLINE_EXCEEDED; R then receives S's `c3` and no other answer for `c1` or
    `c2` (S's late answers are discarded); X's and Y's control channels end with
    INVALID_ARGUMENT; D's request is answered with ERROR_CODE_DEADLINE_EXCEEDED no sooner
    than the default less 50 ms (not applicable with a longer default)."""
    type_t = ctx.unique("held")
    type_u = ctx.unique("asker")
    server = await ctx.serving("s", type_t)
    server_control = await server.open_control()
    requester = await ctx.serving("r", type_u)
    control = await requester.open_control(
        extra_metadata=[(CONTROL_TIMEOUT_KEY, str(_STATED_TIMEOUT_MS))]
    )
    r_id = requester.client_id or ""
    loads = {"c1": False, "c2": True}
    loop = asyncio.get_running_loop()
    sent = {}
    for rpc_id, load in loads.items():
        sent[rpc_id] = loop.time()
        await control.write(_state_request(rpc_id, pb.AgentId(type=type_t, key=rpc_id), r_id, load))
    with ctx.step("AWP-CTL-004", "the held requests reach S", gate=True):
        held = [
            await server_control.expect(
                f"the routed {rpc_id}", functools.partial(_has_rpc_id, rpc_id)
            )
            for rpc_id in loads
        ]
    answers: dict[str, pb.OpenControlChannelResponse] = {}
    with ctx.step(("AWP-CTL-011", "AWP-CTL-004"), "R is answered by each deadline", gate=True):
        for _ in loads:
            frame = await control.expect(
                "an answer for c1 or c2",
                lambda f: f.rpc_id in loads and f.rpc_id not in answers,
                within=_STATED_TIMEOUT_MS / 1000 + 2.0,
            )
            answers[frame.rpc_id] = frame
            elapsed = loop.time() - sent[frame.rpc_id]
            ctx.check(
                elapsed >= 0.35,
                f"{frame.rpc_id} was answered after {elapsed:.3f} s, before its 0.4 s control "
                "timeout",
            )
    for rpc_id, load in loads.items():
        problem = _deadline_answer(answers[rpc_id], load)
        ctx.decide(
            "AWP-CTL-004",
            f"{rpc_id}: ERROR_CODE_DEADLINE_EXCEEDED in a {'Load' if load else 'Save'}"
            "StateResponse",
            problem is None,
            problem or "",
        )
    for got, load in zip(held, loads.values(), strict=True):
        late: pb.LoadStateResponse | pb.SaveStateResponse = (
            pb.LoadStateResponse() if load else pb.SaveStateResponse(state="late")
        )
        name = type(late).__name__
        await server_control.write(
            pb.OpenControlChannelRequest(
                rpc_id=got.rpc_id,
                destination=f"clientid={r_id}",
                rpc_message=any_pb2.Any(
                    type_url="type.googleapis.com/agentworker.v1." + name,
                    value=late.SerializeToString(),
                ),
            )
        )
    await server_control.write(
        _state_request("c3", pb.AgentId(type=type_u, key="k"), server.client_id or "", False)
    )
    with ctx.step("AWP-CTL-013", "the late answers do not reach R"):
        await control.expect("S's request c3", functools.partial(_has_rpc_id, "c3"))
        rest = [f for f in [*control.take_all(), *await control.settle(0.2)] if f.rpc_id in loads]
        ctx.check(not rest, f"S's late answers reached R after its deadline answers: {rest}")
    for label, value in (("x", "0"), ("y", "soon")):
        stream = await ctx.worker(label).open_control(extra_metadata=[(CONTROL_TIMEOUT_KEY, value)])
        code = await stream.wait_end(within=2.0)
        ctx.decide(
            "AWP-CTL-012",
            f"control timeout {value!r}: INVALID_ARGUMENT",
            code is grpc.StatusCode.INVALID_ARGUMENT,
            f"a control channel with control timeout {value!r} ended with "
            f"{code.name if code else 'nothing (still open)'}",
        )
    default_ms = requester.welcome.default_rpc_timeout_ms if requester.welcome else 0
    if not 0 < default_ms <= _LONGEST_DEFAULT_MS:
        ctx.not_applicable(
            "AWP-CTL-011",
            "a channel without a control timeout has the default deadline",
            f"the host's default_rpc_timeout_ms is {default_ms} ms; the case waits for at most "
            f"{_LONGEST_DEFAULT_MS} ms",
        )
        return
    plain = ctx.worker("d")
    plain_control = await plain.open_control()
    started = loop.time()
    await plain_control.write(
        _state_request("d1", pb.AgentId(type=type_t, key="d"), plain.client_id or "", False)
    )
    with ctx.step("AWP-CTL-011", "a channel without a control timeout has the default deadline"):
        await server_control.expect("the routed d1", functools.partial(_has_rpc_id, "d1"))
        frame = await plain_control.expect(
            "the answer for d1", functools.partial(_has_rpc_id, "d1"), default_ms / 1000 + 2.0
        )
        elapsed = loop.time() - started
        ctx.check(
            elapsed >= default_ms / 1000 - 0.05,
            f"d1 was answered after {elapsed:.3f} s, before the default {default_ms} ms",
        )
        problem = _deadline_answer(frame, False)
        ctx.check(problem is None, problem or "")
