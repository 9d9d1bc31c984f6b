"""Worker cases: events the harness delivers to the conformance agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._harness_host import Inbound
from conformance._payloads import pack, ping_event
from conformance._worker_context import (
    AGENT_TYPE,
    BROADCAST_TOPIC,
    PREFIX_TOPIC,
    RECEIPTS_TOPIC,
    WorkerContext,
)
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []


async def deliver_and_check(
    ctx: WorkerContext,
    topic_type: str,
    source: str,
    *,
    protobuf: bool,
    extra: dict[str, str] | None = None,
    delivery: tuple[str, ...] = (),
    receipt_decides: tuple[str, ...] = (),
) -> None:
    """Deliver a Ping event and decide, step by step (``delivery`` names further requirements
    the arrival of the receipt decides), that the agent addressed received it
    (AWP-SUB-010, AWP-SUB-012) and that its EventReceipt describes it (AWP-CNF-005,
    AWP-PUB-022, AWP-PUB-002). ``receipt_decides``, when given, replaces the requirements the
    arrival of the receipt decides (a case that showed the routing already)."""
    conn = await ctx.ready()
    text = ctx.unique("ev")
    event = ping_event(topic_type, source, text, 5, protobuf=protobuf, extra=extra)
    await conn.write(pb.OpenChannelResponse(cloud_event=event))
    with ctx.step(
        receipt_decides or ("AWP-SUB-010", "AWP-SUB-012", "AWP-CNF-005", *delivery),
        "the addressed agent receives the event and publishes a receipt",
        gate=True,
    ):
        receipt, item = await ctx.expect_receipt(event.id)
    expected = cp.ENCODING_PROTOBUF if protobuf else cp.ENCODING_JSON
    ctx.decide(
        "AWP-SUB-010",
        "the receipt names agent key = topic source, and the topic",
        (receipt.agent_key, receipt.topic_type, receipt.topic_source)
        == (source, topic_type, source),
        f"receipt names agent {receipt.agent_key!r}, topic ({receipt.topic_type!r}, "
        f"{receipt.topic_source!r}); expected agent {source!r} on ({topic_type!r}, {source!r})",
    )
    ctx.decide(
        ("AWP-PUB-022", "AWP-PUB-021") if protobuf else "AWP-PUB-022",
        "the event's data decodes in its encoding",
        (receipt.text, receipt.seq, receipt.encoding) == (text, 5, expected),
        "receipt text/seq/encoding "
        f"{(receipt.text, receipt.seq, cp.Encoding.Name(receipt.encoding))}, "
        f"expected {(text, 5, cp.Encoding.Name(expected))}",
    )
    ctx.decide(
        "AWP-CNF-005",
        "the receipt carries the event's sender",
        receipt.HasField("sender"),
        "EventReceipt.sender is not set; it is REQUIRED when the event names its sender "
        "(agagentsendertype/agagentsenderkey), here harness/sender",
    )
    ctx.decide(
        "AWP-PUB-002",
        "the sender attributes are read",
        (receipt.sender.type, receipt.sender.key) == ("harness", "sender"),
        f"receipt sender {receipt.sender}, expected harness/sender (AWP-CNF-005)",
    )
    ctx.decide(
        "AWP-CNF-005",
        "the receipt's source is the agent key",
        item.frame.cloud_event.source == source,
        f"receipt event source {item.frame.cloud_event.source!r}, expected {source!r}",
    )


@worker_case(
    "worker/events/broadcast/json",
    requirements=["AWP-CNF-005", "AWP-PUB-022", "AWP-SUB-010", "AWP-PUB-002"],
)
async def broadcast_json(ctx: WorkerContext) -> None:
    """Procedure: deliver an event on topic (`conformance.broadcast`, `src-…`) with a JSON
    Ping in binary_data, sent by harness/sender, with two extra unknown attributes.

    First a protobuf Ping event to the same agent shows the event reaches the agent, so
    that the receipt of the JSON one decides whether the worker decodes JSON events.

    Asserts: the worker publishes an EventReceipt (protobuf, topic `conformance.receipts`,
    source = the agent key) naming agent key = topic source, the topic, the Ping's text and
    seq, ENCODING_JSON, sender harness/sender and the event id."""
    conn = await ctx.ready()
    source = ctx.unique("src")
    routed = ping_event(BROADCAST_TOPIC, source, "routed", 1, protobuf=True)
    await conn.write(pb.OpenChannelResponse(cloud_event=routed))
    with ctx.step(
        ("AWP-SUB-010", "AWP-CNF-005"),
        "the agent receives a protobuf Ping event and publishes a receipt",
        gate=True,
    ):
        await ctx.expect_receipt(routed.id, 10.0)
    await deliver_and_check(
        ctx,
        BROADCAST_TOPIC,
        source,
        protobuf=False,
        extra={"xconformanceextra": "ignored", "traceparent2": "x"},
        receipt_decides=("AWP-PUB-022",),
    )


@worker_case(
    "worker/events/broadcast/protobuf",
    requirements=["AWP-CNF-005", "AWP-PUB-022", "AWP-PUB-021", "AWP-SUB-010"],
)
async def broadcast_protobuf(ctx: WorkerContext) -> None:
    """Procedure: deliver an event on `conformance.broadcast` with a protobuf Ping in
    proto_data (datacontenttype application/x-protobuf, dataschema the full name).

    Asserts: the EventReceipt names ENCODING_PROTOBUF and the Ping's text and seq."""
    await deliver_and_check(ctx, BROADCAST_TOPIC, ctx.unique("src"), protobuf=True)


@worker_case("worker/events/prefix-topic", requirements=["AWP-CNF-002", "AWP-SUB-010"])
async def prefix_topic(ctx: WorkerContext) -> None:
    """Procedure: deliver a JSON Ping event on topic type `conformance.prefix.anything`.

    Asserts: the prefix subscription delivers it: an EventReceipt for it arrives, naming
    that topic type."""
    await deliver_and_check(
        ctx, PREFIX_TOPIC + "anything", ctx.unique("src"), protobuf=False, delivery=("AWP-CNF-002",)
    )


@worker_case("worker/events/direct-addressed", requirements=["AWP-SUB-011", "AWP-SUB-010"])
async def direct(ctx: WorkerContext) -> None:
    """Procedure: deliver a protobuf Ping event on topic type `conformance:direct` with source
    `d-…` (direct addressing).

    Asserts: the agent conformance/d-… receives it: an EventReceipt names that key."""
    await deliver_and_check(
        ctx, "conformance:direct", ctx.unique("d"), protobuf=True, delivery=("AWP-SUB-011",)
    )


@worker_case("worker/events/string-like-attributes", requirements=["AWP-PUB-002", "AWP-PUB-022"])
async def string_like(ctx: WorkerContext) -> None:
    """Procedure: deliver a protobuf Ping event on `conformance.broadcast` whose
    `dataschema` is a `ce_uri_ref` and `agagentsendertype` a `ce_uri` (string-like cases).

    Asserts: the worker decodes it: an EventReceipt for it arrives with ENCODING_PROTOBUF and
    sender harness/sender."""
    conn = await ctx.ready()
    source = ctx.unique("src")
    event = ping_event(BROADCAST_TOPIC, source, "uri", 2, protobuf=True)
    event.attributes["dataschema"].ce_uri_ref = cp.Ping.DESCRIPTOR.full_name
    event.attributes["agagentsendertype"].ce_uri = "harness"
    await conn.write(pb.OpenChannelResponse(cloud_event=event))
    with ctx.step(("AWP-PUB-002", "AWP-PUB-022"), "the event is received", gate=True):
        receipt, _ = await ctx.expect_receipt(event.id)
    ctx.decide(
        "AWP-PUB-022",
        "the Ping decodes though dataschema is a ce_uri_ref",
        receipt.encoding == cp.ENCODING_PROTOBUF and receipt.text == "uri",
        f"receipt {receipt}",
    )
    ctx.decide(
        "AWP-PUB-002",
        "a ce_uri sender type is read as a string",
        receipt.sender.type == "harness",
        f"receipt sender {receipt.sender}",
    )


@worker_case("worker/events/order-per-agent", requirements=["AWP-CONN-011", "AWP-CNF-005"])
async def order_per_agent(ctx: WorkerContext) -> None:
    """Procedure: deliver 20 JSON Ping events with seq 0..19, back to back, on
    `conformance.broadcast` with one source (so one agent receives them all).

    Asserts: the 20 EventReceipts arrive with seq 0..19 in order (the agent handled the
    events in the order received)."""
    conn = await ctx.ready()
    source = ctx.unique("src")
    events = [ping_event(BROADCAST_TOPIC, source, "o", n, protobuf=False) for n in range(20)]
    for event in events:
        await conn.write(pb.OpenChannelResponse(cloud_event=event))
    ids = {event.id for event in events}
    seqs = []
    with ctx.step("AWP-CNF-005", "a receipt for each of the 20 events", gate=True):
        for _ in events:
            item = await ctx.host.expect(
                "EventReceipt (20 expected)",
                lambda i: (
                    i.frame.WhichOneof("message") == "cloud_event"
                    and i.frame.cloud_event.type == "conformance.receipts"
                    and i.frame.cloud_event.source == source
                ),
                10.0,
            )
            receipt = cp.EventReceipt.FromString(item.frame.cloud_event.proto_data.value)
            ctx.check(receipt.event_id in ids, f"receipt for an unknown event {receipt.event_id}")
            seqs.append(receipt.seq)
    ctx.decide(
        "AWP-CONN-011",
        "the events are handled in the order received",
        seqs == list(range(20)),
        f"receipts in the order {seqs}",
    )


@worker_case("worker/events/not-to-sender", requirements=["AWP-SUB-012"])
async def not_to_sender(ctx: WorkerContext) -> None:
    """Procedure: on `conformance.broadcast` with source `s-…` (so addressed to agent
    conformance/s-…), deliver event E1 whose sender attributes name conformance/s-… itself,
    then event E2 from harness/sender.

    Asserts: E2 is received (an EventReceipt for it arrives); E1 never is: no EventReceipt
    for it arrives by then or within a short while after (the agent named as an event's
    sender does not receive it)."""
    conn = await ctx.ready()
    source = ctx.unique("s")
    own = ping_event(BROADCAST_TOPIC, source, "own", 1, protobuf=False)
    own.attributes["agagentsendertype"].ce_string = AGENT_TYPE
    own.attributes["agagentsenderkey"].ce_string = source
    other = ping_event(BROADCAST_TOPIC, source, "other", 2, protobuf=False)
    for event in (own, other):
        await conn.write(pb.OpenChannelResponse(cloud_event=event))
    with ctx.step("AWP-SUB-012", "an event from another sender is delivered", gate=True):
        await ctx.expect_receipt(other.id)
    with ctx.step("AWP-SUB-012", "the event is not delivered to the agent that sent it"):
        await asyncio.sleep(ctx.seconds(0.2))  # a bounded window for a late receipt
        late = ctx.host.pending(_receipt_for(own.id))
        ctx.check(not late, "the agent named as the event's sender received it")


def _receipt_from(agent_key: str) -> Callable[[Inbound], bool]:
    """Match an EventReceipt on the data channel published by the agent ``agent_key``."""

    def match(item: Inbound) -> bool:
        frame = item.frame
        return (
            not item.connection.control
            and frame.WhichOneof("message") == "cloud_event"
            and frame.cloud_event.type == RECEIPTS_TOPIC
            and frame.cloud_event.source == agent_key
        )

    return match


def _receipt_for(event_id: str) -> Callable[[Inbound], bool]:
    def match(item: Inbound) -> bool:
        frame = item.frame
        if frame.WhichOneof("message") != "cloud_event":
            return False
        event = frame.cloud_event
        if event.type != RECEIPTS_TOPIC or event.WhichOneof("data") != "proto_data":
            return False
        try:
            return cp.EventReceipt.FromString(event.proto_data.value).event_id == event_id
        except Exception:  # a receipt that does not decode is not this one
            return False

    return match


def _arrival(ctx: WorkerContext, item: object) -> int:
    """Return the position of ``item`` among the frames the harness received."""
    return next(index for index, seen in enumerate(ctx.host.inbound) if seen is item)


def _stalled_ping_event(
    topic_type: str, source: str, text: str, seq: int, stall_ms: int
) -> ce.CloudEvent:
    event = ping_event(topic_type, source, text, seq, protobuf=True)
    ping = cp.Ping(text=text, seq=seq, stall_ms=stall_ms)
    event.proto_data.value = ping.SerializeToString()
    return event


@worker_case(
    "worker/events/per-agent-order",
    requirements=["AWP-CONN-040", "AWP-CNF-030", "AWP-CONN-011"],
)
async def per_agent_order(ctx: WorkerContext) -> None:
    """Procedure: deliver two protobuf Ping events on `conformance.broadcast` with the same
    source `o-…` (so the same agent): the first with `stall_ms` 800, the second, sent right
    after it, without.

    Asserts: both EventReceipts arrive and the first event's receipt arrives before the
    second's: the agent did not start the second handler while the first was stalled."""
    conn = await ctx.ready()
    source = ctx.unique("o")
    first = _stalled_ping_event(BROADCAST_TOPIC, source, "first", 1, 800)
    second = ping_event(BROADCAST_TOPIC, source, "second", 2, protobuf=True)
    sent_at = time.monotonic()
    await conn.write(pb.OpenChannelResponse(cloud_event=first))
    await conn.write(pb.OpenChannelResponse(cloud_event=second))
    within = ctx.seconds(10.0)
    _, first_item = await ctx.expect_receipt(first.id, within)
    _, second_item = await ctx.expect_receipt(second.id, within)
    ctx.check(
        first_item.at - sent_at >= 0.8,
        f"the receipt of a Ping with stall_ms 800 arrived {first_item.at - sent_at:.3f} s after "
        "the event was sent: the agent did not wait (AWP-CNF-030)",
    )
    ctx.check(
        _arrival(ctx, first_item) < _arrival(ctx, second_item),
        "the receipt of the second event to one agent arrived before the receipt of the first, "
        "which stalls 800 ms: the agent's second handler started before its first ended "
        "(AWP-CONN-040)",
    )


@worker_case("worker/events/agents-independent", requirements=["AWP-CONN-041", "AWP-CNF-030"])
async def agents_independent(ctx: WorkerContext) -> None:
    """Procedure: deliver a protobuf Ping event to agent `a-…` with `stall_ms` 3000 (scaled by
    --timeout-scale), then a Ping event without a stall to another agent `b-…`.

    Asserts: the receipt for `b-…` arrives before the receipt for `a-…`: a stalled agent does
    not hold up another agent's messages."""
    conn = await ctx.ready()
    stall_ms = int(ctx.seconds(3.0) * 1000)
    slow = _stalled_ping_event(BROADCAST_TOPIC, ctx.unique("a"), "slow", 1, stall_ms)
    quick = ping_event(BROADCAST_TOPIC, ctx.unique("b"), "quick", 2, protobuf=True)
    sent_at = time.monotonic()
    await conn.write(pb.OpenChannelResponse(cloud_event=slow))
    await conn.write(pb.OpenChannelResponse(cloud_event=quick))
    within = ctx.seconds(10.0) + stall_ms / 1000
    _, slow_item = await ctx.expect_receipt(slow.id, within)
    _, quick_item = await ctx.expect_receipt(quick.id, within)
    ctx.check(
        slow_item.at - sent_at >= stall_ms / 1000,
        f"the receipt of a Ping with stall_ms {stall_ms} arrived {slow_item.at - sent_at:.3f} s "
        "after the event was sent: the agent did not wait (AWP-CNF-030)",
    )
    ctx.check(
        _arrival(ctx, quick_item) < _arrival(ctx, slow_item),
        f"the receipt for an unstalled agent arrived after that of another agent stalled "
        f"{stall_ms} ms: one agent's handler held up another's (AWP-CONN-041)",
    )


@worker_case("worker/events/own-subscriptions-only", requirements=["AWP-SUB-012", "AWP-SUB-010"])
async def own_subscriptions_only(ctx: WorkerContext) -> None:
    """Procedure: deliver a JSON Ping event on a topic type no subscription of the worker
    matches (`conformance.unsubscribed…`), then one on `conformance.broadcast`, both with
    source `src-…` (one agent).

    Asserts: the worker publishes an EventReceipt for the second event only: it matches
    events against its own subscriptions, whatever the host sent (the host delivers only
    matches the worker owns, AWP-SUB-013)."""
    conn = await ctx.ready()
    source = ctx.unique("src")
    stray = ping_event(ctx.unique("conformance.unsubscribed"), source, "stray", 1, protobuf=False)
    matched = ping_event(BROADCAST_TOPIC, source, "matched", 2, protobuf=False)
    await conn.write(pb.OpenChannelResponse(cloud_event=stray))
    await conn.write(pb.OpenChannelResponse(cloud_event=matched))
    await ctx.expect_receipt(matched.id)
    late = ctx.host.pending(_receipt_from(source))
    ctx.check(
        not late,
        f"the worker handled an event on {stray.type!r}, which none of its subscriptions "
        "matches (AWP-SUB-012)",
    )


@worker_case("worker/events/unhandled-type", requirements=["AWP-PUB-025", "AWP-PUB-022"])
async def unhandled_type(ctx: WorkerContext) -> None:
    """Procedure: deliver on `conformance.broadcast` a protobuf event that decodes but is a
    `Pong`, which the conformance agent has no handler for; then a JSON Ping event; both with
    source `src-…`.

    Asserts: the worker stays connected (it handles the Ping on the same channel) and
    publishes an EventReceipt for the Ping only."""
    conn = await ctx.ready()
    source = ctx.unique("src")
    unhandled = ping_event(BROADCAST_TOPIC, source, "x", 1, protobuf=True)
    unhandled.proto_data.CopyFrom(pack(cp.Pong(text="x", seq=1, agent_key="k")))
    unhandled.attributes["dataschema"].ce_string = cp.Pong.DESCRIPTOR.full_name
    handled = ping_event(BROADCAST_TOPIC, source, "y", 2, protobuf=False)
    await conn.write(pb.OpenChannelResponse(cloud_event=unhandled))
    with ctx.step(
        "AWP-PUB-025",
        "the channel stays open: a later Ping event on it is handled",
        gate=True,
    ):
        await conn.write(pb.OpenChannelResponse(cloud_event=handled))
        _, item = await ctx.expect_receipt(handled.id)
        ctx.check(item.connection is conn, "the receipt came on another channel")
    late = ctx.host.pending(_receipt_from(source))
    ctx.decide(
        "AWP-PUB-025",
        "the event of a type no handler takes is not delivered",
        not late,
        f"{len(late)} receipts for an event of a type no handler takes",
    )
