"""Worker cases: events the worker publishes."""

from __future__ import annotations

import json
import re

from agentworker.conformance.v1 import contract_pb2 as cp
from conformance._harness_host import Inbound
from conformance._payloads import JSON, PROTOBUF, attribute, unpack_any
from conformance._worker_context import AGENT_TYPE, WorkerContext
from conformance.worker_cases._registry import worker_case

__all__: list[str] = []

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


async def publish_and_collect(
    ctx: WorkerContext, *, protobuf: bool, count: int
) -> tuple[list[Inbound], str, str]:
    """Run Command.publish and collect the events; return them, the topic and the key."""
    conn = await ctx.ready()
    topic = ctx.unique("conformance.out")
    source = ctx.unique("src")
    key = ctx.unique("pub")
    action = cp.PublishAction(
        topic_type=topic,
        topic_source=source,
        count=count,
        first_seq=100,
        text="published",
        encoding=cp.ENCODING_PROTOBUF if protobuf else cp.ENCODING_JSON,
    )
    result = await ctx.command(conn, cp.Command(publish=action), key=key)
    ctx.check(
        result.published == count, f"CommandResult.published {result.published} (AWP-CNF-010)"
    )
    events = []
    with ctx.step("AWP-CNF-010", "every event Command.publish reports arrives", gate=True):
        for index in range(count):
            item = await ctx.host.expect(
                f"published event {index + 1} of {count}",
                lambda i: (
                    not i.connection.control
                    and i.frame.WhichOneof("message") == "cloud_event"
                    and i.frame.cloud_event.type == topic
                ),
                within=5.0,
            )
            events.append(item)
    return events, source, key


def check_envelope(ctx: WorkerContext, item: Inbound, source: str, key: str, protobuf: bool) -> int:
    """Check one published event's envelope (AWP-PUB-001) and return its Ping's seq."""
    event = item.frame.cloud_event
    where = f"event {event.id!r}"
    ctx.check(_UUID.match(event.id), f"{where}: id is not a UUID (AWP-PUB-001)")
    ctx.check(
        event.spec_version == "1.0", f"{where}: spec_version {event.spec_version!r} (AWP-PUB-001)"
    )
    ctx.check(
        event.source == source,
        f"{where}: source {event.source!r}, expected {source!r} (AWP-PUB-001)",
    )
    # Names first: a misspelt name would otherwise fail as a missing value (AWP-PUB-001).
    for name in event.attributes:
        ctx.check(
            re.fullmatch(r"[a-z0-9]+", name), f"{where}: attribute name {name!r} (AWP-PUB-002)"
        )
    expected = {
        "datacontenttype": PROTOBUF if protobuf else JSON,
        "dataschema": cp.Ping.DESCRIPTOR.full_name if protobuf else "Ping",
        "agagentsendertype": AGENT_TYPE,
        "agagentsenderkey": key,
        "agmsgkind": "publish",
    }
    for name, value in expected.items():
        got = attribute(event, name)
        reqs = "AWP-PUB-001, AWP-PUB-020" if name in ("datacontenttype", "dataschema") else ""
        ctx.check(
            got == value,
            f"{where}: attribute {name} = {got!r}, expected {value!r} ({reqs or 'AWP-PUB-001'})",
        )
    data = event.WhichOneof("data")
    if protobuf:
        ctx.check(
            data == "proto_data",
            f"{where}: protobuf data in {data}, expected proto_data (AWP-PUB-021)",
        )
        ping = unpack_any(event.proto_data, cp.Ping)
        ctx.check(ping is not None, f"{where}: proto_data type_url {event.proto_data.type_url!r}")
        assert ping is not None
        return int(ping.seq)
    ctx.check(
        data == "binary_data", f"{where}: JSON data in {data}, expected binary_data (AWP-PUB-021)"
    )
    decoded: object
    try:
        decoded = json.loads(event.binary_data)
    except ValueError:
        decoded = None
    ctx.check(
        isinstance(decoded, dict) and decoded.get("text") == "published",
        f"{where}: JSON data {event.binary_data[:80]!r} (AWP-CNF-004)",
    )
    assert isinstance(decoded, dict)
    return int(decoded.get("seq", -1))


@worker_case(
    "worker/publish/envelope/json",
    requirements=["AWP-PUB-001", "AWP-PUB-002", "AWP-PUB-020", "AWP-PUB-021", "AWP-CNF-010"],
)
async def envelope_json(ctx: WorkerContext) -> None:
    """Procedure: Command.publish, JSON encoding, 5 Pings from seq 100 on a fresh topic.

    Asserts: CommandResult.published = 5; 5 events arrive, each with a UUID id (all
    distinct), spec_version 1.0, type/source the topic, ce_string attributes datacontenttype
    application/json, dataschema `Ping`, agagentsendertype `conformance`, agagentsenderkey the
    agent key, agmsgkind `publish`, lower-case attribute names, JSON in binary_data; seq
    100..104 in order."""
    events, source, key = await publish_and_collect(ctx, protobuf=False, count=5)
    seqs = [check_envelope(ctx, item, source, key, protobuf=False) for item in events]
    ids = [item.frame.cloud_event.id for item in events]
    ctx.check(len(set(ids)) == len(ids), f"event ids repeat: {ids} (AWP-PUB-001)")
    ctx.check(
        seqs == list(range(100, 105)), f"seqs {seqs}, expected 100..104 in order (AWP-CNF-010)"
    )


@worker_case(
    "worker/publish/envelope/protobuf",
    requirements=["AWP-PUB-001", "AWP-PUB-021", "AWP-CNF-010", "AWP-CONN-011", "AWP-BAT-001"],
)
async def envelope_protobuf(ctx: WorkerContext) -> None:
    """Procedure: Command.publish, protobuf encoding, 50 Pings from seq 100.

    Asserts: as for JSON, with datacontenttype application/x-protobuf, dataschema
    `agentworker.conformance.v1.Ping` and an Any in proto_data; seq 100..149 in order; ids
    distinct; no batch frame unless CAPABILITY_BATCHING is in force (checked in every
    case)."""
    events, source, key = await publish_and_collect(ctx, protobuf=True, count=50)
    seqs = [check_envelope(ctx, item, source, key, protobuf=True) for item in events]
    ids = [item.frame.cloud_event.id for item in events]
    ctx.check(len(set(ids)) == len(ids), "event ids repeat (AWP-PUB-001)")
    ctx.check(
        seqs == list(range(100, 150)),
        f"seqs {seqs[:10]}..., not 100..149 in order (AWP-CNF-010, AWP-CONN-011)",
    )
