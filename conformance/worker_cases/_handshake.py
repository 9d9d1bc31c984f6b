"""Worker cases: the handshake, client-id and the order of setup calls."""

from __future__ import annotations

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Level
from conformance._harness_host import HarnessHost
from conformance._payloads import enum_name, json_ping_payload
from conformance._wire import CANONICAL_SERVICE
from conformance._worker_context import WorkerContext
from conformance.worker_cases._registry import worker_case
from conformance.worker_cases._security import second_worker

__all__: list[str] = []


@worker_case("worker/handshake/client-id-on-every-call", requirements=["AWP-CONN-002"])
async def client_id_everywhere(ctx: WorkerContext) -> None:
    """Procedure: wait until the worker is ready (data channel open, `conformance` registered
    and subscribed); look at every call it made since it started.

    Asserts: every call (OpenChannel, OpenControlChannel, RegisterAgent, AddSubscription, ...)
    carried non-empty `client-id` metadata, and all carried the same value. (The harness host
    refuses a unary call without client-id with INVALID_ARGUMENT, as a host must.)"""
    first = ctx.subject.started_at_connection
    since = ctx.host.connections[first].opened_at if len(ctx.host.connections) > first else 0.0
    try:
        await ctx.ready()
    finally:
        calls = [c for c in ctx.host.calls if c.at >= since]
        missing = [c.method for c in calls if not c.client_id]
        ctx.check(not missing, f"calls without client-id metadata: {missing} (AWP-CONN-002)")
    ids = {c.client_id for c in calls}
    ctx.check(len(ids) == 1, f"the worker used several client-ids: {sorted(map(str, ids))}")


@worker_case("worker/handshake/hello", requirements=["AWP-VER-010", "AWP-VER-016", "AWP-CONN-001"])
async def hello(ctx: WorkerContext) -> None:
    """Procedure: wait until the worker is ready; read the `agentworker-hello-bin` metadata of
    its OpenChannel.

    Asserts: the hello is present, decodes as ChannelHello, has protocol_version 1, lists no
    CAPABILITY_UNSPECIFIED and no capability twice. The implementation name and capabilities
    are recorded in the trace (each declared capability makes its cases mandatory). On this
    plaintext, token-less connection the hello announces none of CAPABILITY_TLS,
    CAPABILITY_MUTUAL_TLS, CAPABILITY_BEARER_TOKEN (they describe the connection). Every call
    the worker made used the canonical service path `/agentworker.v1.AgentRpcService/...`."""
    with ctx.step("AWP-CONN-001", "the worker opens a gRPC data channel and registers", gate=True):
        conn = await ctx.ready()
    canonical = f"/{CANONICAL_SERVICE}/"
    paths = sorted({c.path for c in ctx.host.calls if c.client_id == conn.client_id})
    ctx.decide(
        "AWP-CONN-001",
        f"every call uses the service path {canonical}<Method>",
        all(path.startswith(canonical) for path in paths),
        f"the worker called {[p for p in paths if not p.startswith(canonical)]} on a host that "
        f"serves {canonical} (a v1 host need not serve the legacy path)",
    )
    ctx.check(conn.hello_present, "OpenChannel carried no agentworker-hello-bin (AWP-VER-010)")
    ctx.check(conn.hello is not None, "agentworker-hello-bin does not decode as ChannelHello")
    assert conn.hello is not None
    ctx.trace.note(
        "harness",
        f"implementation {conn.hello.implementation!r}, capabilities "
        f"{[enum_name(pb.Capability, c) for c in conn.hello.capabilities]}",
    )
    ctx.check(
        conn.hello.protocol_version == 1,
        f"hello protocol_version {conn.hello.protocol_version}, expected 1 (AWP-VER-010)",
    )
    caps = list(conn.hello.capabilities)
    ctx.check(pb.CAPABILITY_UNSPECIFIED not in caps, "the hello lists CAPABILITY_UNSPECIFIED")
    ctx.check(len(caps) == len(set(caps)), f"the hello lists a capability twice: {caps}")
    unused = {pb.CAPABILITY_TLS, pb.CAPABILITY_MUTUAL_TLS, pb.CAPABILITY_BEARER_TOKEN} & set(caps)
    ctx.check(
        not unused,
        f"the hello announces {sorted(enum_name(pb.Capability, c) for c in unused)} on a "
        "plaintext connection without a token (AWP-VER-016)",
    )


# gRPC does not order separate calls (AWP-CONN-008): a registration sent just after the data
# channel may still reach the host first. This much earlier is no reordering.
_REORDERING_S = 0.2


@worker_case("worker/handshake/channel-before-registration", requirements=["AWP-CONN-007"])
async def channel_first(ctx: WorkerContext) -> None:
    """Procedure: wait until the worker is ready; compare the arrival time of its first
    OpenChannel with those of its RegisterAgent and AddSubscription calls. (Like a host, the
    harness holds a registration that arrives before the caller's data channel for up to 5 s,
    then fails it with FAILED_PRECONDITION, so a worker that waits for its registrations
    before opening its channel shows up here.)

    Asserts: no RegisterAgent or AddSubscription with the worker's client-id arrived more
    than 200 ms (the reordering gRPC allows between calls) before its data channel opened."""
    first_call = ctx.subject.started_at_call
    try:
        await ctx.ready()
    finally:
        calls = ctx.host.calls[first_call:]
        opened = [c.at for c in calls if c.method == "OpenChannel"]
        first_open = min(opened, default=float("inf"))
        early = [
            c.method
            for c in calls
            if c.method in ("RegisterAgent", "AddSubscription")
            and c.at < first_open - _REORDERING_S
        ]
        ctx.check(
            not early,
            f"called {early} before opening the data channel "
            f"({'never opened' if not opened else 'opened later'}) (AWP-CONN-007)",
        )


@worker_case(
    "worker/registration/conformance-agent",
    requirements=["AWP-CNF-002", "AWP-SUB-011", "AWP-CNF-001"],
)
async def registration(ctx: WorkerContext) -> None:
    """Procedure: start the worker with AGENTWORKER_HOST_ADDRESS naming the harness host;
    wait (10 s) for it to register and subscribe.

    Asserts: it registers agent type `conformance` and adds a TypeSubscription
    `conformance.broadcast` → `conformance`, a TypePrefixSubscription `conformance.prefix.` →
    `conformance` and the direct-addressing TypePrefixSubscription `conformance:` →
    `conformance`, each with a non-empty id, no two with the same id."""
    with ctx.step(
        ("AWP-CNF-001", "AWP-CNF-002", "AWP-SUB-011"),
        "registers `conformance` with its three subscriptions at AGENTWORKER_HOST_ADDRESS",
        gate=True,
    ):
        conn = await ctx.ready()
    by_id: dict[str, set[bytes]] = {}
    for method, request in ctx.session_calls(conn):
        if method == "AddSubscription" and isinstance(request, pb.AddSubscriptionRequest):
            sub = request.subscription
            by_id.setdefault(sub.id, set()).add(sub.SerializeToString(deterministic=True))
    ctx.decide(
        "AWP-CNF-002",
        "every subscription has an id",
        "" not in by_id,
        "a subscription has an empty id",
    )
    shared = [sub_id for sub_id, rules in by_id.items() if len(rules) > 1]
    ctx.decide(
        "AWP-CNF-002",
        "no id names two subscriptions",
        not shared,
        f"one id names different subscriptions: {shared}",
    )


async def _legacy_run(
    ctx: WorkerContext,
    host: HarnessHost,
    why: str = "a host that sent no welcome",
    no_batch: tuple[str, ...] = ("AWP-VER-015", "AWP-BAT-001"),
    legacy: bool = True,
) -> None:
    """Start a second worker against ``host`` (a host under which batching is not in force)
    and decide, step by step, that it gets ready, answers a Ping, and sends no batch frame to
    ``why`` (deciding ``no_batch``). With ``legacy`` the host plays a legacy one, and getting
    ready without a welcome decides AWP-VER-015; otherwise the setup steps decide
    ``no_batch`` (nothing can be decided without them)."""
    extra = await second_worker(ctx, {}, None, host=host)
    sub = WorkerContext(subject=extra, scale=ctx.scale, trace=ctx.trace)
    setup = ("AWP-VER-015",) if legacy else no_batch
    with ctx.step(
        setup,
        "registers and subscribes within 10 s " + ("without a welcome" if legacy else f"({why})"),
        gate=True,
    ):
        conn = await sub.ready()
    with ctx.step(
        setup, "answers a Ping from " + ("the legacy host" if legacy else why), gate=True
    ):
        response = await sub.rpc(conn, json_ping_payload("legacy", 1))
        ctx.check(response.error == "", f"error response {response.error!r}")
    action = cp.PublishAction(
        topic_type=ctx.unique("conformance.legacy"),
        topic_source="s",
        count=200,
        text="m",
        encoding=cp.ENCODING_PROTOBUF,
    )
    with ctx.step("AWP-VER-012", "publishes 200 events to the legacy host", gate=True):
        result = await sub.command(conn, cp.Command(publish=action), key="legacy", within=15.0)
        ctx.check(result.published == 200, f"published {result.published}")
        await extra.host.wait_for(
            "200 published events",
            lambda: (
                sum(
                    1
                    for i in extra.host.inbound
                    if i.frame.WhichOneof("message") == "cloud_event"
                    and i.frame.cloud_event.type == action.topic_type
                )
                >= 200
            ),
            10.0,
        )
    ctx.decide(
        no_batch,
        f"no batch frame to {why}",
        conn.batches == 0,
        f"the worker sent {conn.batches} batch frames to {why}",
    )


@worker_case(
    "worker/handshake/legacy-host",
    requirements=["AWP-VER-015", "AWP-VER-012", "AWP-BAT-001", "AWP-VER-020"],
)
async def legacy_host(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode) start a second instance of the worker against a harness host
    that plays a legacy host: it answers OpenChannel with response headers that hold no
    `agentworker-welcome-bin`. Send a Ping, then Command.publish of 200 protobuf Pings.

    Asserts: the worker does not wait for a welcome forever: it registers and subscribes
    within 10 s (scaled) and answers the Ping; with no capability in force it sends no batch
    frame, even when many publishes are queued."""
    await _legacy_run(
        ctx,
        HarnessHost(scale=ctx.scale, welcome=False),
        "a host that sent no welcome",
        ("AWP-VER-015", "AWP-VER-020", "AWP-BAT-001"),
    )


@worker_case(
    "worker/handshake/legacy-host-no-headers",
    requirements=["AWP-VER-015", "AWP-VER-012", "AWP-BAT-001"],
)
async def legacy_host_no_headers(ctx: WorkerContext) -> None:
    """Procedure: as worker/handshake/legacy-host, but the legacy host sends no response
    headers at all before its first frame (as real legacy hosts may: the headers then come
    with the first frame, and that frame is a request the harness sends only once the worker
    is ready).

    Asserts: the worker bounds its wait for the headers: it registers and subscribes within
    10 s (scaled), answers the Ping and sends no batch frame."""
    await _legacy_run(ctx, HarnessHost(scale=ctx.scale, welcome=False, headers_first=False))


@worker_case("worker/handshake/later-major-version", requirements=["AWP-VER-018"])
async def later_major_version(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode) start a second instance of the worker against a harness host
    whose welcome says protocol_version 2 and lists every capability the hello offered
    (batching included). Send a Ping, then Command.publish of 200 protobuf Pings.

    Asserts: the worker registers and answers the Ping, and sends no batch frame: a welcome
    of another major version puts no capability in force."""
    await _legacy_run(
        ctx,
        HarnessHost(scale=ctx.scale, welcome_version=2),
        "a host whose welcome has protocol_version 2",
        ("AWP-VER-018",),
    )


@worker_case(
    "worker/handshake/capability-not-welcomed",
    requirements=["AWP-VER-012"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_BATCHING,
)
async def capability_not_welcomed(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode; CAPABILITY_BATCHING) start a second instance of the worker
    against a harness host whose version 1 welcome lists every capability the hello offered
    except CAPABILITY_BATCHING. Send a Ping, then Command.publish of 200 protobuf Pings.

    Asserts: the worker registers, answers the Ping and sends no batch frame: a capability
    the welcome does not list is not in force, whatever the hello listed."""
    host = HarnessHost(scale=ctx.scale, withhold=frozenset({pb.CAPABILITY_BATCHING}))
    await _legacy_run(
        ctx, host, "a host whose welcome does not list batching", ("AWP-VER-012",), legacy=False
    )
