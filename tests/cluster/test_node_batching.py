"""Frames between nodes travel batched, many to a NATS message (AWP-CLU-015).

The test counts every NATS message on the cluster's own subjects (``awp.<cluster name>.>``,
whatever they carry: frames, acknowledgements, confirmations) while a burst crosses from one
node to another. Nodes that sent each frame alone would publish at least one message per frame.
"""

from __future__ import annotations

import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host.cluster.nats_server import NatsServer
from tests.cluster._state import nats_client
from tests.cluster.conftest import ConnectTo, StartNode
from tests.host._raw import TIMEOUT_S, event, hello, type_sub

pytestmark = pytest.mark.asyncio

BATCHES = 5
PER_BATCH = 200


@pytest.mark.requirement("AWP-CLU-015")
async def test_a_burst_crosses_nodes_in_far_fewer_nats_messages_than_frames(
    nats_server: NatsServer, cluster_name: str, start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, b = await start_node("a"), await start_node("b")
    subscriber = await connect_to(b.port, "sub", hello(pb.CAPABILITY_BATCHING))
    await subscriber.register("listener")
    await subscriber.subscribe(type_sub("s1", "burst", "listener"))
    publisher = await connect_to(a.port, "pub", hello(pb.CAPABILITY_BATCHING))
    async with nats_client(nats_server.url) as client:
        messages = 0

        async def count(_msg: object) -> None:
            nonlocal messages
            messages += 1

        watch = await client.subscribe(f"awp.{cluster_name}.>", cb=count)
        await client.flush()
        frames = BATCHES * PER_BATCH
        for b_index in range(BATCHES):
            batch = pb.OpenChannelRequest.Batch(
                messages=[
                    pb.OpenChannelRequest(
                        cloud_event=event("burst", event_id=f"e{b_index * PER_BATCH + i}")
                    )
                    for i in range(PER_BATCH)
                ]
            )
            await publisher.send(pb.OpenChannelRequest(batch=batch))
        await publisher.publish(event("burst", event_id="end"))
        received = [e.id for e in await subscriber.events_until("end", TIMEOUT_S * 3)]
        await client.flush()
        await watch.unsubscribe()
    assert received == [f"e{i}" for i in range(frames)]
    # Each batch from the worker is routed at once, so the link to b has all its frames queued
    # when it next writes: a few messages per batch at most, acknowledgements included.
    assert 0 < messages <= (frames + 1) // 10, f"{messages} NATS messages for {frames + 1} frames"
