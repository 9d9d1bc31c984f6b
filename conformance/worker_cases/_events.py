"""Worker cases: events the harness delivers to the conformance agent."""

from __future__ import annotations

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import CaseFailure
from conformance._payloads import ping_event
from conformance._worker_context import BROADCAST_TOPIC, PREFIX_TOPIC, WorkerContext
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []


async def deliver_and_check(
    ctx: WorkerContext,
    topic_type: str,
    source: str,
    *,
    protobuf: bool,
    extra: dict[str, str] | None = None,
) -> None:
    """Deliver a Ping event and check the EventReceipt describes it (AWP-CNF-005)."""
    conn = await ctx.ready()
    text = ctx.unique("ev")
    event = ping_event(topic_type, source, text, 5, protobuf=protobuf, extra=extra)
    await conn.write(pb.OpenChannelResponse(cloud_event=event))
    receipt, item = await ctx.expect_receipt(event.id)
    expected = cp.ENCODING_PROTOBUF if protobuf else cp.ENCODING_JSON
    ctx.check(
        (receipt.agent_key, receipt.topic_type, receipt.topic_source)
        == (source, topic_type, source),
        f"receipt names agent {receipt.agent_key!r}, topic ({receipt.topic_type!r}, "
        f"{receipt.topic_source!r}); expected agent {source!r} on ({topic_type!r}, {source!r}) "
        "(AWP-SUB-010)",
    )
    ctx.check(
        (receipt.text, receipt.seq, receipt.encoding) == (text, 5, expected),
        "receipt text/seq/encoding "
        f"{(receipt.text, receipt.seq, cp.Encoding.Name(receipt.encoding))}, "
        f"expected {(text, 5, cp.Encoding.Name(expected))} (AWP-PUB-022)",
    )
    ctx.check(
        (receipt.sender.type, receipt.sender.key) == ("harness", "sender"),
        f"receipt sender {receipt.sender}, expected harness/sender",
    )
    ctx.check(
        item.frame.cloud_event.source == source,
        f"receipt event source {item.frame.cloud_event.source!r}, expected {source!r} "
        "(AWP-CNF-005)",
    )


@worker_case(
    "worker/events/broadcast/json",
    requirements=["AWP-CNF-005", "AWP-PUB-022", "AWP-SUB-010", "AWP-PUB-002"],
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
    await deliver_and_check(ctx, PREFIX_TOPIC + "anything", ctx.unique("src"), protobuf=False)


@worker_case("worker/events/direct-addressed", requirements=["AWP-SUB-011", "AWP-SUB-010"])
async def direct(ctx: WorkerContext) -> None:
    """Procedure: deliver a protobuf Ping event on topic type `conformance:direct` with source
    `d-…` (direct addressing).

    Asserts: the agent conformance/d-… receives it: an EventReceipt names that key."""
    await deliver_and_check(ctx, "conformance:direct", ctx.unique("d"), protobuf=True)


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
    receipt, _ = await ctx.expect_receipt(event.id)
    ctx.check(
        receipt.encoding == cp.ENCODING_PROTOBUF and receipt.text == "uri",
        f"receipt {receipt} (AWP-PUB-022)",
    )
    ctx.check(receipt.sender.type == "harness", f"receipt sender {receipt.sender} (AWP-PUB-002)")


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
    ctx.check(seqs == list(range(20)), f"receipts in the order {seqs} (AWP-CONN-011)")


@worker_case("worker/events/not-to-sender", requirements=["AWP-SUB-012"])
async def not_to_sender(ctx: WorkerContext) -> None:
    """Procedure: deliver a JSON Ping event E1 on (`conformance.broadcast`, `own-…`) whose
    sender is `conformance/own-…`, the very agent its subscription addresses; then E2 on the
    same topic, sent by harness/sender.

    Asserts: E2's EventReceipt arrives and E1 gets none (a worker never delivers an event to
    the agent named as its sender; the agent handles its events in order, so a receipt for
    E1 would come first)."""
    conn = await ctx.ready()
    source = ctx.unique("own")
    own = ping_event(BROADCAST_TOPIC, source, "own", 1, protobuf=False)
    own.attributes["agagentsendertype"].ce_string = "conformance"
    own.attributes["agagentsenderkey"].ce_string = source
    other = ping_event(BROADCAST_TOPIC, source, "other", 2, protobuf=False)
    await conn.write(pb.OpenChannelResponse(cloud_event=own))
    await conn.write(pb.OpenChannelResponse(cloud_event=other))
    await ctx.expect_receipt(other.id)
    try:
        await ctx.expect_receipt(own.id, within=0.3)
    except CaseFailure:
        return  # no receipt for E1, as required
    ctx.check(False, f"the agent conformance/{source} received event {own.id}, which it sent")
