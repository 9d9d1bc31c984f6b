"""Worker cases: events the harness delivers to the conformance agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._harness_host import Inbound
from conformance._payloads import ping_event
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
) -> None:
    """Deliver a Ping event and decide, step by step (``delivery`` names further requirements
    the arrival of the receipt decides), that the agent addressed received it
    (AWP-SUB-010, AWP-SUB-012) and that its EventReceipt describes it (AWP-CNF-005,
    AWP-PUB-022, AWP-PUB-002)."""
    conn = await ctx.ready()
    text = ctx.unique("ev")
    event = ping_event(topic_type, source, text, 5, protobuf=protobuf, extra=extra)
    await conn.write(pb.OpenChannelResponse(cloud_event=event))
    with ctx.step(
        ("AWP-SUB-010", "AWP-SUB-012", "AWP-CNF-005", *delivery),
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
        "AWP-PUB-002",
        "the sender attributes are read",
        (receipt.sender.type, receipt.sender.key) == ("harness", "sender"),
        f"receipt sender {receipt.sender}, expected harness/sender",
    )
    ctx.decide(
        "AWP-CNF-005",
        "the receipt's source is the agent key",
        item.frame.cloud_event.source == source,
        f"receipt event source {item.frame.cloud_event.source!r}, expected {source!r}",
    )


@worker_case(
    "worker/events/broadcast/json",
    requirements=["AWP-CNF-005", "AWP-PUB-022", "AWP-SUB-010", "AWP-SUB-012", "AWP-PUB-002"],
)
async def broadcast_json(ctx: WorkerContext) -> None:
    """Procedure: deliver an event on topic (`conformance.broadcast`, `src-…`) with a JSON
    Ping in binary_data, sent by harness/sender, with two extra unknown attributes.

    Asserts: the worker publishes an EventReceipt (protobuf, topic `conformance.receipts`,
    source = the agent key) naming agent key = topic source, the topic, the Ping's text and
    seq, ENCODING_JSON, sender harness/sender and the event id."""
    await deliver_and_check(
        ctx,
        BROADCAST_TOPIC,
        ctx.unique("src"),
        protobuf=False,
        extra={"xconformanceextra": "ignored", "traceparent2": "x"},
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
