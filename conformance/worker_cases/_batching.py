"""Worker cases: batch frames (CAPABILITY_BATCHING)."""

from __future__ import annotations

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Level
from conformance._payloads import JSON, json_ping_payload, ping_event
from conformance._worker_context import AGENT_TYPE, BROADCAST_TOPIC, WorkerContext
from conformance.worker_cases._registry import worker_case
from conformance.worker_cases._rpc import check_pong

__all__: list[str] = []


@worker_case(
    "worker/batching/accepts-batches",
    requirements=["AWP-BAT-003", "AWP-BAT-002"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_BATCHING,
)
async def accepts(ctx: WorkerContext) -> None:
    """Procedure: (CAPABILITY_BATCHING) send one batch frame holding three Ping requests and
    two Ping events, then ask the worker (Command.publish, 200 events) to publish many events.

    Asserts: all three requests are answered with their Pongs and both events (for one agent)
    get receipts, in order;
    the 200 published events (in batches or not, as the worker likes) arrive with seq in order
    and no batch nests a batch or is empty."""
    conn = await ctx.ready()
    frames = []
    ids = []
    for seq in range(3):
        rid = ctx.unique("b")
        ids.append(rid)
        frames.append(
            pb.OpenChannelResponse(
                request=pb.RpcRequest(
                    request_id=rid,
                    target=pb.AgentId(type=AGENT_TYPE, key="k"),
                    payload=json_ping_payload(f"b{seq}", seq),
                )
            )
        )
    # One source: one agent, which handles the two events in order (AWP-BAT-003).
    source = ctx.unique("src")
    events = [ping_event(BROADCAST_TOPIC, source, "be", n, protobuf=False) for n in range(2)]
    frames += [pb.OpenChannelResponse(cloud_event=e) for e in events]
    await conn.write(pb.OpenChannelResponse(batch=pb.OpenChannelResponse.Batch(messages=frames)))
    with ctx.step("AWP-BAT-003", "every request and event in the batch is handled", gate=True):
        responses = [await ctx.expect_response(rid) for rid in ids]
        receipts = [(await ctx.expect_receipt(event.id))[1] for event in events]
    for seq, response in enumerate(responses):
        check_pong(ctx, response, JSON, f"b{seq}", seq, "k")
    order = [next(i for i, x in enumerate(ctx.host.inbound) if x is r) for r in receipts]
    ctx.decide(
        "AWP-BAT-003",
        "the batch's events for one agent are handled in order",
        order[0] < order[1],
        "the receipts of the batch's two events came in reverse order",
    )
    topic = ctx.unique("conformance.many")
    action = cp.PublishAction(
        topic_type=topic,
        topic_source="s",
        count=200,
        first_seq=0,
        text="m",
        encoding=cp.ENCODING_PROTOBUF,
    )
    result = await ctx.command(conn, cp.Command(publish=action), key="batcher", within=15.0)
    ctx.check(result.published == 200, f"published {result.published}")
    seqs = []
    for _ in range(200):
        item = await ctx.host.expect(
            "published event",
            lambda i: (
                i.frame.WhichOneof("message") == "cloud_event" and i.frame.cloud_event.type == topic
            ),
            10.0,
        )
        seqs.append(cp.Ping.FromString(item.frame.cloud_event.proto_data.value).seq)
    ctx.check(
        seqs == list(range(200)), f"published seqs out of order: {seqs[:20]}... (AWP-BAT-003)"
    )
