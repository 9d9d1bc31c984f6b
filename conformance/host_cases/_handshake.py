"""Host cases: the v1 handshake and what legacy workers must not see."""

from __future__ import annotations

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, type_subscription
from conformance._host_context import HostContext
from conformance._predicates import event_with_id
from conformance._wire import WELCOME_KEY, unknown_case_frame
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case(
    "host/handshake/welcome",
    requirements=["AWP-VER-013", "AWP-VER-012", "AWP-CONN-028", "AWP-VER-017"],
    v1_only=True,
)
async def welcome(ctx: HostContext) -> None:
    """Procedure: open a data channel with a hello announcing no capabilities and send no frame;
    open another announcing CAPABILITY_BATCHING only.

    Asserts: each receives `agentworker-welcome-bin` initial metadata without sending a frame;
    the welcome decodes, has protocol_version 1, default_rpc_timeout_ms > 0 and
    max_message_bytes > 0, channel_wait_ms >= 5000, lists only capabilities the hello listed,
    states max_batch_messages when batching is in force, and lists no security mechanism
    (the harness connects in plaintext without a token)."""
    for label, caps in (("none", ()), ("batching", (pb.CAPABILITY_BATCHING,))):
        worker = ctx.worker(label, hello=ctx.hello(caps))
        await worker.open()
        w = worker.welcome
        ctx.decide(
            "AWP-VER-013",
            f"{label}: a welcome arrives before any frame and decodes",
            worker.welcome_metadata and w is not None,
            f"{label}: no agentworker-welcome-bin metadata, or it does not decode",
            gate=True,
        )
        assert w is not None
        with ctx.step("AWP-VER-013", f"{label}: the welcome's fields are set"):
            ctx.check(w.protocol_version == 1, f"{label}: protocol_version {w.protocol_version}")
            ctx.check(w.default_rpc_timeout_ms > 0, f"{label}: default_rpc_timeout_ms is 0")
            ctx.check(w.max_message_bytes > 0, f"{label}: max_message_bytes is 0")
            if pb.CAPABILITY_BATCHING in w.capabilities:
                ctx.check(w.max_batch_messages > 0, f"{label}: batching without max_batch_messages")
        ctx.decide(
            "AWP-CONN-028",
            f"{label}: channel_wait_ms is at least 5000",
            w.channel_wait_ms >= 5000,
            f"{label}: channel_wait_ms {w.channel_wait_ms}, expected at least 5000",
        )
        ctx.decide(
            "AWP-VER-017",
            f"{label}: no security mechanism on a plaintext connection without a token",
            not w.security_mechanisms,
            f"{label}: security_mechanisms {list(w.security_mechanisms)} on a plaintext "
            "connection without a token",
        )
        extra = set(w.capabilities) - set(caps)
        ctx.decide(
            "AWP-VER-012",
            f"{label}: the welcome lists only capabilities the hello listed",
            not extra,
            f"{label}: welcome lists capabilities the hello did not: "
            f"{sorted(pb.Capability.Name(c) for c in extra)}",
        )


@host_case("host/handshake/bad-hello", requirements=["AWP-VER-014"], v1_only=True)
async def bad_hello(ctx: HostContext) -> None:
    """Procedure: open a data channel whose hello bytes do not decode; open one whose hello has
    protocol_version 99.

    Asserts: the first ends with INVALID_ARGUMENT, the second with FAILED_PRECONDITION."""
    garbled = ctx.worker("garbled", hello=b"\xff\xff\xff")
    await garbled.open(welcome_timeout=2.0)
    code = await garbled.data.wait_end()
    ctx.check(
        code is grpc.StatusCode.INVALID_ARGUMENT,
        f"undecodable hello: expected INVALID_ARGUMENT, got {code.name if code else 'open'} "
        "(AWP-VER-014)",
    )
    future = ctx.worker("v99", hello=ctx.hello(version=99))
    await future.open(welcome_timeout=2.0)
    code = await future.data.wait_end()
    ctx.check(
        code is grpc.StatusCode.FAILED_PRECONDITION,
        "protocol_version 99: expected FAILED_PRECONDITION, got "
        f"{code.name if code else 'open'} (AWP-VER-014)",
    )


@host_case("host/handshake/legacy-worker-sees-no-v1-frames", requirements=["AWP-VER-011"])
async def legacy_worker_no_v1(ctx: HostContext) -> None:
    """Procedure: a worker without a hello registers a type and subscribes to a topic, sends a
    frame with an unknown case and an invalid event (spec_version 0.3), then 20 valid events
    on its topic in a row.

    Asserts: it receives the 20 events as plain `cloud_event` frames and never a Notice, a
    Batch or another v1-only case, and no welcome metadata."""
    legacy = ctx.worker("legacy", hello=None)
    await legacy.open()
    agent_type = ctx.unique("legacy")
    topic = ctx.unique("topic")
    await legacy.register(agent_type)
    await legacy.subscribe(type_subscription(ctx.unique("sub"), topic, agent_type))
    await legacy.send(unknown_case_frame())
    bad = event(topic, "k", "bad")
    bad.spec_version = "0.3"
    await legacy.publish(bad)
    sent = [event(topic, "k", str(i)) for i in range(20)]
    for ev in sent:
        await legacy.publish(ev)
    with ctx.step("AWP-VER-011", "the 20 events arrive as plain cloud_event frames", gate=True):
        for ev in sent:
            await legacy.data.expect(
                f"event {ev.id}",
                event_with_id(ev.id),
            )
    rest = await legacy.data.settle(0.2)
    ctx.decide(
        "AWP-VER-011",
        "no Notice, Batch or other extra frame",
        legacy.data.frames_received == 20 and not rest,
        f"the legacy worker received {legacy.data.frames_received} frames for 20 events "
        "(batches, notices or extra frames)",
    )
    keys = await legacy.metadata_keys()
    ctx.decide(
        "AWP-VER-011",
        "no welcome metadata",
        WELCOME_KEY not in keys,
        "the legacy worker received a welcome",
    )
