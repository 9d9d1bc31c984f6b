"""Host cases: event delivery (fan-out, order, matching, fidelity, invalid events)."""

from __future__ import annotations

from google.protobuf import any_pb2, timestamp_pb2

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, prefix_subscription, type_subscription
from conformance._host_context import HostContext
from conformance._predicates import event_with_id, is_event
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []


async def _receive_ids(worker: RawWorker, ids: list[str], what: str) -> None:
    """Take the events with ``ids`` from ``worker``'s inbox, in any order."""
    for event_id in ids:
        await worker.data.expect(
            f"{what} event {event_id}",
            event_with_id(event_id),
        )


@host_case(
    "host/publish/fan-out-exactness",
    requirements=["AWP-PUB-010", "AWP-SUB-010", "AWP-CONN-010"],
)
async def fan_out(ctx: HostContext) -> None:
    """Procedure: topic type X. P (publisher) serves type TP subscribed to X; R1 serves TR1
    with two subscriptions matching X (exact and prefix); R2 serves TR2 subscribed by prefix;
    N serves TN subscribed to another topic type; Q serves TQ with no subscription. P
    publishes 20 events on X.

    Asserts: P, R1 and R2 each receive every event exactly once; N and Q receive nothing."""
    topic = ctx.unique("fan")
    names = {label: ctx.unique("t" + label) for label in ("p", "r1", "r2", "n", "q")}
    workers = {label: await ctx.serving(label, t) for label, t in names.items()}
    await workers["p"].subscribe(type_subscription(ctx.unique("s"), topic, names["p"]))
    await workers["r1"].subscribe(type_subscription(ctx.unique("s"), topic, names["r1"]))
    await workers["r1"].subscribe(
        prefix_subscription(ctx.unique("s"), topic.rsplit(".", 1)[0] + ".", names["r1"])
    )
    await workers["r2"].subscribe(prefix_subscription(ctx.unique("s"), topic, names["r2"]))
    await workers["n"].subscribe(type_subscription(ctx.unique("s"), topic + "x", names["n"]))
    sent = [event(topic, "src", str(i)) for i in range(20)]
    for ev in sent:
        await workers["p"].publish(ev)
    ids = [ev.id for ev in sent]
    with ctx.step("AWP-PUB-010", "the publisher's own worker receives every event"):
        await _receive_ids(workers["p"], ids, "p")
    with ctx.step(("AWP-PUB-010", "AWP-SUB-010"), "R1 (exact and prefix) receives every event"):
        await _receive_ids(workers["r1"], ids, "r1")
    with ctx.step("AWP-SUB-010", "R2 (prefix equal to the topic type) receives every event"):
        await _receive_ids(workers["r2"], ids, "r2")
    for label, worker in workers.items():
        rest = [f for f in await worker.data.settle(0.1) if is_event(f)]
        reqs = ("AWP-PUB-010", "AWP-SUB-010") if label in ("n", "q") else "AWP-PUB-010"
        ctx.decide(
            reqs,
            f"{label} receives no event beyond those once each",
            not rest,
            f"{label} received {len(rest)} unexpected or duplicate events, e.g. "
            f"{rest[0].cloud_event.id if rest else ''}",
        )


@host_case("host/publish/publisher-own-worker", requirements=["AWP-PUB-010"])
async def publisher_own_worker(ctx: HostContext) -> None:
    """Procedure: worker P serves type TP subscribed to topic X and is the only subscriber;
    P publishes an event on X; then P publishes on X with source `other` (addressing agent
    TP/other, which P's worker also serves).

    Asserts: P receives each event exactly once (the publisher's own worker is part of the
    fan-out even when it is the only one)."""
    topic = ctx.unique("own")
    agent_type = ctx.unique("tp")
    publisher = await ctx.serving("p", agent_type)
    await publisher.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    for source in ("src", "other"):
        sent = event(topic, source, source)
        await publisher.publish(sent)
        with ctx.step("AWP-PUB-010", f"the publisher's worker receives its event ({source})"):
            await publisher.data.expect(f"event {sent.id}", event_with_id(sent.id))
    rest = [f for f in await publisher.data.settle(0.1) if is_event(f)]
    ctx.decide(
        "AWP-PUB-010",
        "the publisher's worker receives each event once",
        not rest,
        f"P received {len(rest)} duplicate events",
    )


@host_case("host/publish/per-publisher-order", requirements=["AWP-PUB-011", "AWP-CONN-011"])
async def per_publisher_order(ctx: HostContext) -> None:
    """Procedure: receiver R subscribes to topic X; publishers P1 and P2 each publish 50
    events on X, interleaved, with a sequence number in the data.

    Asserts: R receives all 100 and, for each publisher, in publishing order."""
    topic = ctx.unique("order")
    agent_type = ctx.unique("recv")
    receiver = await ctx.serving("r", agent_type)
    await receiver.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    publishers = [await ctx.connect("p1"), await ctx.connect("p2")]
    for i in range(50):
        for n, publisher in enumerate(publishers):
            await publisher.publish(event(topic, "k", f"{n}:{i}"))
    seen: dict[str, list[int]] = {"0": [], "1": []}
    with ctx.step("AWP-PUB-011", "R receives all 100 events", gate=True):
        for _ in range(100):
            ev = await receiver.expect_event("one of 100 events")
            who, seq = ev.binary_data.decode().split(":")
            seen[who].append(int(seq))
    for who, seqs in seen.items():
        ctx.decide(
            ("AWP-PUB-011", "AWP-CONN-011"),
            f"publisher {who}'s events arrive in publishing order",
            seqs == list(range(50)),
            f"publisher {who}'s events arrived as {seqs}",
        )


@host_case("host/publish/topic-matching", requirements=["AWP-SUB-010"])
async def topic_matching(ctx: HostContext) -> None:
    """Procedure: R subscribes exact type `B.exact` and prefix `B.pre.`; a publisher sends
    topic types `B.exact`, `B.exact.more`, `B.exac`, `B.pre.x`, `B.pre.`, `B.pre`, `B.PRE.x`
    and `b.pre.x` (B a unique base), with source `s-<n>`.

    Asserts: R receives exactly the events on `B.exact`, `B.pre.x` and `B.pre.`; events are
    addressed by source (the received event keeps its source)."""
    base = ctx.unique("Match")
    agent_type = ctx.unique("m")
    receiver = await ctx.serving("r", agent_type)
    await receiver.subscribe(type_subscription(ctx.unique("s"), base + ".exact", agent_type))
    await receiver.subscribe(prefix_subscription(ctx.unique("s"), base + ".pre.", agent_type))
    publisher = await ctx.connect("p")
    topics = {
        ".exact": True,
        ".exact.more": False,
        ".exac": False,
        ".pre.x": True,
        ".pre.": True,
        ".pre": False,
        ".PRE.x": False,
    }
    sent = {}
    for n, (suffix, match) in enumerate(topics.items()):
        ev = event(base + suffix, f"s-{n}", suffix)
        sent[ev.id] = (suffix, match)
        await publisher.publish(ev)
    lower = event(base.lower() + ".pre.x", "s-lower", "lower")
    sent[lower.id] = ("lowercased base", False)
    await publisher.publish(lower)
    wanted = [i for i, (_, match) in sent.items() if match]
    with ctx.step("AWP-SUB-010", "the matching topic types are delivered"):
        await _receive_ids(receiver, wanted, "matching")
    rest = [f.cloud_event for f in await receiver.data.settle(0.2) if is_event(f)]
    ctx.decide(
        "AWP-SUB-010",
        "no other topic type is delivered",
        not rest,
        "non-matching topic types were delivered: "
        + ", ".join(sent.get(e.id, (e.type, False))[0] for e in rest),
    )


def _rich_event(topic: str) -> list[ce.CloudEvent]:
    attrs = ce.CloudEvent.CloudEventAttributeValue
    first = event(topic, "source/with spaces", "ignored")
    first.ClearField("binary_data")
    first.proto_data.CopyFrom(
        any_pb2.Any(type_url="type.googleapis.com/x.y.Z", value=b"\x08\x01\x12\x02hi")
    )
    first.attributes["flag"].CopyFrom(attrs(ce_boolean=True))
    first.attributes["count"].CopyFrom(attrs(ce_integer=-7))
    first.attributes["blob"].CopyFrom(attrs(ce_bytes=b"\x00\xff"))
    first.attributes["link"].CopyFrom(attrs(ce_uri="https://example.com/a?b=c"))
    first.attributes["ref"].CopyFrom(attrs(ce_uri_ref="../rel"))
    first.attributes["when"].CopyFrom(
        attrs(ce_timestamp=timestamp_pb2.Timestamp(seconds=1700000000, nanos=123))
    )
    first.attributes["traceparent"].CopyFrom(
        attrs(ce_string="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    )
    second = event(topic, "s2", "ignored")
    second.ClearField("binary_data")
    second.text_data = '{"text": "ünïcödé"}'
    third = event(topic, "s3", '{"n": 1}')
    return [first, second, third]


@host_case("host/publish/forwarded-unchanged", requirements=["AWP-PUB-003", "AWP-OBS-005"])
async def forwarded_unchanged(ctx: HostContext) -> None:
    """Procedure: R subscribes to topic X; a publisher sends three events on X: one with
    proto_data and attributes of every type (boolean, integer, bytes, uri, uri-ref,
    timestamp, string incl. traceparent), one with text_data, one with binary_data.

    Asserts: R receives each event equal, field by field and attribute by attribute, to what
    was published."""
    topic = ctx.unique("rich")
    agent_type = ctx.unique("r")
    receiver = await ctx.serving("r", agent_type)
    await receiver.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    publisher = await ctx.connect("p")
    for n, sent in enumerate(_rich_event(topic)):
        what = ("proto_data and every attribute type", "text_data", "binary_data")[n]
        await publisher.publish(sent)
        with ctx.step("AWP-PUB-003", f"{what}: delivered", gate=True):
            got = await receiver.data.expect(f"event {sent.id}", event_with_id(sent.id))
        reqs = ("AWP-PUB-003", "AWP-OBS-005") if n == 0 else "AWP-PUB-003"
        ctx.decide(
            reqs,
            f"{what}: forwarded unchanged",
            got.cloud_event == sent,
            f"event {sent.id} changed in transit: sent {sent} received {got.cloud_event}",
        )


@host_case("host/publish/invalid-event", requirements=["AWP-PUB-004", "AWP-ERR-010"])
async def invalid_event(ctx: HostContext) -> None:
    """Procedure: R subscribes to topic X by prefix; a publisher sends on X an event with
    spec_version `0.3`, one with an empty id, then a valid event.

    Asserts: R receives only the valid event; on v1 runs the publisher receives a Notice with
    ERROR_CODE_INVALID_REQUEST for each invalid event, naming the first one's id."""
    topic = ctx.unique("inv")
    agent_type = ctx.unique("r")
    receiver = await ctx.serving("r", agent_type)
    await receiver.subscribe(prefix_subscription(ctx.unique("s"), topic, agent_type))
    publisher = await ctx.connect("p")
    old = event(topic, "k", "old")
    old.spec_version = "0.3"
    no_id = event(topic, "k", "no id", event_id="")
    good = event(topic, "k", "good")
    for ev in (old, no_id, good):
        await publisher.publish(ev)
    with ctx.step("AWP-PUB-004", "only the valid event is delivered"):
        got = await receiver.expect_event("the valid event")
        ctx.check(got.id == good.id, f"an invalid event was delivered: {got}")
        rest = [f for f in await receiver.data.settle(0.2) if is_event(f)]
        ctx.check(not rest, f"R received {len(rest)} more events")
    if ctx.legacy:
        ctx.not_applicable("AWP-ERR-010", "a Notice per invalid event", "legacy publisher")
        return
    with ctx.step(("AWP-PUB-004", "AWP-ERR-010"), "a Notice per invalid event", gate=True):
        first = await publisher.expect_notice("a notice for the spec_version 0.3 event")
        second = await publisher.expect_notice("a notice for the event without id")
    for notice in (first, second):
        ctx.decide(
            ("AWP-PUB-004", "AWP-ERR-010"),
            f"the notice for {notice.event_id or 'the event without id'} has "
            "ERROR_CODE_INVALID_REQUEST",
            notice.code == pb.ERROR_CODE_INVALID_REQUEST,
            f"notice code {pb.ErrorCode.Name(notice.code)}",
        )
    ctx.decide(
        "AWP-PUB-004",
        "the notice names the event's id",
        first.event_id == old.id,
        f"notice names event {first.event_id!r}, not {old.id}",
    )


@host_case("host/publish/unroutable-subscription", requirements=["AWP-PUB-012", "AWP-PUB-010"])
async def unroutable_subscription(ctx: HostContext) -> None:
    """Procedure: worker S adds a subscription on topic X for an agent type nobody serves;
    R serves a type subscribed to X. A publisher P sends an event on X.

    Asserts: R receives it; S receives nothing; P receives no Notice or other frame."""
    topic = ctx.unique("unroutable")
    stray = await ctx.connect("s")
    await stray.subscribe(type_subscription(ctx.unique("s"), topic, ctx.unique("nobody")))
    agent_type = ctx.unique("r")
    receiver = await ctx.serving("r", agent_type)
    await receiver.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    publisher = await ctx.connect("p")
    sent = event(topic, "k", "x")
    await publisher.publish(sent)
    # R misses the event when the unserved subscription is not skipped (AWP-PUB-012).
    with ctx.step(("AWP-PUB-010", "AWP-PUB-012"), "R receives the event", gate=True):
        await receiver.data.expect(f"event {sent.id}", event_with_id(sent.id))
    for worker, reqs in ((stray, "AWP-PUB-010"), (publisher, "AWP-PUB-012")):
        rest = await worker.data.settle(0.2)
        what = "no frame reaches S" if worker is stray else "the publisher gets no Notice"
        ctx.decide(reqs, what, not rest, f"{worker.label} received {len(rest)} frames")


@host_case(
    "host/publish/foreign-subscription",
    requirements=["AWP-SUB-013", "AWP-PUB-010", "AWP-PUB-012"],
)
async def foreign_subscription(ctx: HostContext) -> None:
    """Procedure: worker A serves TA; worker B serves TB; worker C serves TC. A adds a
    subscription on topic X for agent type TB (a type A does not serve); C adds its own
    subscription on X for TC. P publishes an event on X.

    Asserts: C receives it; B does not (B matches events only against its own subscriptions
    and would drop it, so the host must not count it delivered there); A receives nothing."""
    topic = ctx.unique("foreign")
    type_a, type_b, type_c = ctx.unique("ta"), ctx.unique("tb"), ctx.unique("tc")
    a = await ctx.serving("a", type_a)
    b = await ctx.serving("b", type_b)
    c = await ctx.serving("c", type_c)
    await a.subscribe(type_subscription(ctx.unique("s"), topic, type_b))
    await c.subscribe(type_subscription(ctx.unique("s"), topic, type_c))
    publisher = await ctx.connect("p")
    sent = event(topic, "k", "x")
    await publisher.publish(sent)
    await c.data.expect(f"event {sent.id}", event_with_id(sent.id))
    rest = [f for f in await b.data.settle(0.2) if is_event(f)]
    ctx.check(
        not rest,
        "B received an event through a subscription that A owns for B's agent type (AWP-SUB-013)",
    )
    rest = [f for f in await a.data.settle(0.0) if is_event(f)]
    ctx.check(not rest, f"A received {len(rest)} events")
