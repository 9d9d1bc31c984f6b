"""Batching, bounded queues, backpressure, slow consumers and overload."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host
from tests.host._raw import TIMEOUT_S, RawWorker, event, eventually, hello, type_sub
from tests.host.conftest import ConnectWorker, StartHost


def _batch_of_events(topic: str, count: int, prefix: str = "b") -> pb.OpenChannelRequest:
    return pb.OpenChannelRequest(
        batch=pb.OpenChannelRequest.Batch(
            messages=[
                pb.OpenChannelRequest(cloud_event=event(topic, event_id=f"{prefix}{i}"))
                for i in range(count)
            ]
        )
    )


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-BAT-001", "AWP-BAT-003", "AWP-BAT-004", "AWP-VER-011")
async def test_queued_frames_go_out_as_batches_only_to_batching_workers(
    host: Host, connect: ConnectWorker
) -> None:
    publisher = await connect("pub", hello(pb.CAPABILITY_BATCHING))
    batching = await connect("batching", hello(pb.CAPABILITY_BATCHING))
    small = await connect("small", hello(pb.CAPABILITY_BATCHING, max_batch_messages=16))
    plain = await connect("plain", hello())
    legacy = await connect("legacy")
    for worker in (batching, small, plain, legacy):
        await worker.register(worker.client_id)
        await worker.subscribe(type_sub(f"{worker.client_id}-s", "burst", worker.client_id))
    count = 200
    # One incoming batch is routed without yielding, so the recipients' queues fill up before
    # their writers run: the writers then find many frames queued at once.
    await publisher.send(_batch_of_events("burst", count))
    expected = [f"b{i}" for i in range(count)]
    for worker in (batching, small, plain, legacy):
        ids = [(await worker.next()).cloud_event.id for _ in range(count)]
        assert ids == expected, worker.client_id
    batch_sizes = [
        len(frame.batch.messages)
        for frame in batching.raw_frames
        if frame.WhichOneof("message") == "batch"
    ]
    assert batch_sizes, "a batching worker receives Batch frames when frames queue up"
    assert all(size >= 2 for size in batch_sizes)
    small_sizes = [
        len(frame.batch.messages) for frame in small.raw_frames if frame.HasField("batch")
    ]
    assert small_sizes
    assert max(small_sizes) <= 16
    for worker in (plain, legacy):
        assert all(not frame.HasField("batch") for frame in worker.raw_frames)
        assert len(worker.raw_frames) == count
    assert host.metrics.batches_sent >= len(batch_sizes) + len(small_sizes)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-BAT-001", "AWP-BAT-003")
async def test_incoming_batch_is_processed_in_order_even_without_the_capability(
    connect: ConnectWorker,
) -> None:
    publisher = await connect("legacy-pub")
    consumer = await connect("consumer")
    await consumer.register("consumer")
    await consumer.subscribe(type_sub("c-s", "t", "consumer"))
    await publisher.send(_batch_of_events("t", 5, "x"))
    await publisher.publish(event("t", event_id="after"))
    ids = [(await consumer.next()).cloud_event.id for _ in range(6)]
    assert ids == ["x0", "x1", "x2", "x3", "x4", "after"]


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-BAT-002")
async def test_nested_batch_is_skipped_with_notice(host: Host, connect: ConnectWorker) -> None:
    worker = await connect("nester", hello(pb.CAPABILITY_BATCHING))
    await worker.register("nester")
    await worker.subscribe(type_sub("n-s", "t", "nester"))
    nested = pb.OpenChannelRequest(
        batch=pb.OpenChannelRequest.Batch(
            messages=[
                pb.OpenChannelRequest(cloud_event=event("t", event_id="one")),
                _batch_of_events("t", 2, "inner"),
                pb.OpenChannelRequest(cloud_event=event("t", event_id="two")),
            ]
        )
    )
    await worker.send(nested)
    received = [await worker.next() for _ in range(3)]
    cases = [frame.WhichOneof("message") for frame in received]
    assert cases == ["cloud_event", "notice", "cloud_event"]
    assert received[0].cloud_event.id == "one"
    assert received[1].notice.code == pb.ERROR_CODE_INVALID_REQUEST
    assert received[2].cloud_event.id == "two"
    assert host.metrics.frames_invalid == 1


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-BAT-002", "AWP-BAT-005")
async def test_batch_over_the_limit_or_empty_is_skipped_with_notice(
    start_host: StartHost,
) -> None:
    host = await start_host(max_batch_messages=4)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        worker = await RawWorker(channel, "big-batcher").open(hello(pb.CAPABILITY_BATCHING))
        try:
            assert worker.welcome is not None
            assert worker.welcome.max_batch_messages == 4
            await worker.register("big-batcher")
            await worker.subscribe(type_sub("bb-s", "t", "big-batcher"))
            await worker.send(_batch_of_events("t", 5, "over"))
            await worker.send(pb.OpenChannelRequest(batch=pb.OpenChannelRequest.Batch()))
            await worker.send(_batch_of_events("t", 4, "ok"))
            received = [await worker.next() for _ in range(6)]
            cases = [frame.WhichOneof("message") for frame in received]
            assert cases == ["notice", "notice"] + ["cloud_event"] * 4
            assert [frame.notice.code for frame in received[:2]] == [
                pb.ERROR_CODE_INVALID_REQUEST
            ] * 2
            assert "holds 5" in received[0].notice.message
            assert "holds 0" in received[1].notice.message
            assert [frame.cloud_event.id for frame in received[2:]] == [f"ok{i}" for i in range(4)]
            assert host.metrics.frames_invalid == 2
        finally:
            await worker.close()


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-FLOW-001", "AWP-FLOW-003")
async def test_slow_consumer_is_disconnected_while_others_keep_working(
    start_host: StartHost,
) -> None:
    host = await start_host(queue_limit=16, slow_consumer_timeout_ms=2_500)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        publisher = await RawWorker(channel, "pub").open(hello())
        fast = await RawWorker(channel, "fast").open(hello(pb.CAPABILITY_BATCHING))
        slow = await RawWorker(channel, "slow").open(hello(), read=False)
        for worker in (fast, slow):
            await worker.register(worker.client_id)
            await worker.subscribe(type_sub(f"{worker.client_id}-s", "big", worker.client_id))
        await fast.subscribe(type_sub("fast-marker", "marker", "fast"))
        blob = b"x" * 65_536
        sent: list[str] = []
        # Publish until the host gives up on the consumer that never reads. gRPC's own
        # buffers absorb a few MiB first, so the number of events needed is not fixed.
        for i in range(2_000):
            if host.metrics.slow_consumers_disconnected:
                break
            await publisher.publish(event("big", event_id=f"big{i}", data=blob))
            sent.append(f"big{i}")
        await eventually(lambda: host.metrics.slow_consumers_disconnected == 1)
        assert host.metrics.events_dropped_slow_consumer >= 1
        await publisher.publish(event("marker", event_id="end"))
        received = await fast.events_until("end", within=60)
        assert [e.id for e in received] == sent
        # The slow consumer's registrations are gone; it sees RESOURCE_EXHAUSTED once it reads.
        listed = await publisher.api.get_subscriptions(publisher.metadata)
        assert "slow-s" not in {sub.id for sub in listed.subscriptions}
        slow.start_reading()
        assert await slow.wait_ended(within=60) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert slow.end_details == "slow consumer"
        await publisher.request("r", "slow")
        response = (await publisher.next_of("response")).response
        assert response.error_code == pb.ERROR_CODE_UNKNOWN_TARGET
        for worker in (publisher, fast):
            await worker.close()


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-FLOW-002")
async def test_request_to_a_full_queue_is_overloaded(start_host: StartHost) -> None:
    host = await start_host(queue_limit=8, slow_consumer_timeout_ms=60_000)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        publisher = await RawWorker(channel, "pub").open(hello())
        caller = await RawWorker(channel, "caller").open(hello())
        stuck = await RawWorker(channel, "stuck").open(hello(), read=False)
        await stuck.register("stuck")
        await stuck.subscribe(type_sub("stuck-s", "big", "stuck"))
        blob = b"x" * 65_536
        publishing = asyncio.ensure_future(_flood(publisher, blob))
        try:
            # The publisher's reader now waits for room in the stuck worker's full queue.
            await eventually(lambda: host.metrics.queue_depth_max >= 8, within=60)
            await caller.request("r", "stuck")
            response = (await caller.next()).response
            assert response.request_id == "r"
            assert response.error_code == pb.ERROR_CODE_OVERLOADED
            assert response.error
        finally:
            publishing.cancel()
            await stuck.close()
            await asyncio.wait({publishing}, timeout=TIMEOUT_S)
        for worker in (publisher, caller):
            await worker.close()


async def _flood(publisher: RawWorker, blob: bytes) -> None:
    for i in range(2_000):
        await publisher.publish(event("big", event_id=f"f{i}", data=blob))


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-004", "AWP-CONN-003")
async def test_oversized_frame_ends_only_that_channel(start_host: StartHost) -> None:
    host = await start_host(max_message_bytes=65_536)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        big = await RawWorker(channel, "big").open(hello())
        assert big.welcome is not None
        assert big.welcome.max_message_bytes == 65_536
        other = await RawWorker(channel, "other").open(hello())
        await other.register("other")
        await other.subscribe(type_sub("o-s", "t", "other"))
        await big.publish(event("t", data=b"x" * 70_000))
        assert await big.wait_ended() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await eventually(lambda: host.metrics.connections_open == 1)
        await other.publish(event("t", event_id="fine", data=b"x" * 60_000))
        assert (await other.next()).cloud_event.id == "fine"
        await other.close()


@pytest.mark.asyncio
async def test_batches_stay_within_the_message_limit(start_host: StartHost) -> None:
    host = await start_host(max_message_bytes=65_536)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        publisher = await RawWorker(channel, "pub").open(hello())
        consumer = await RawWorker(channel, "consumer").open(hello(pb.CAPABILITY_BATCHING))
        await consumer.register("consumer")
        await consumer.subscribe(type_sub("c-s", "t", "consumer"))
        # Each event is about 10 KB; an incoming batch of 40 queues about 400 KB at once.
        batch = pb.OpenChannelRequest(
            batch=pb.OpenChannelRequest.Batch(
                messages=[
                    pb.OpenChannelRequest(
                        cloud_event=event("t", event_id=f"e{i}", data=b"y" * 10_000)
                    )
                    for i in range(5)
                ]
            )
        )
        for _ in range(8):
            await publisher.send(batch)
        ids = [(await consumer.next()).cloud_event.id for _ in range(40)]
        assert ids == [f"e{i}" for i in range(5)] * 8
        assert consumer.raw_frames
        assert all(frame.ByteSize() <= 65_536 for frame in consumer.raw_frames)
        for worker in (publisher, consumer):
            await worker.close()


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-FLOW-005", "AWP-VER-013")
async def test_calls_past_the_announced_in_flight_limit_get_overloaded(
    start_host: StartHost,
) -> None:
    host = await start_host(max_calls_in_flight=3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        target = await RawWorker(channel, "target").open(hello())
        await target.register("holder")
        caller = await RawWorker(channel, "caller").open(hello())
        assert caller.welcome is not None
        assert caller.welcome.max_calls_in_flight == 3
        for n in range(4):
            await caller.request(f"r{n}", "holder", timeout_ms=60_000)
        refused = (await caller.next_of("response")).response
        assert refused.request_id == "r3"
        assert refused.error_code == pb.ERROR_CODE_OVERLOADED
        got = [(await target.next_of("request")).request for _ in range(3)]
        await target.respond(got[0].request_id)
        answered = (await caller.next_of("response")).response
        assert answered.request_id == "r0"
        assert not answered.error
        # An answer frees a slot.
        await caller.request("r4", "holder", timeout_ms=60_000)
        fourth = (await target.next_of("request")).request
        assert fourth.request_id not in {g.request_id for g in got}
        for worker in (caller, target):
            await worker.close()


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-FLOW-007", "AWP-FLOW-008", "AWP-ERR-010")
async def test_notices_for_a_full_queue_are_owed_not_dropped(start_host: StartHost) -> None:
    host = await start_host(queue_limit=2)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        worker = await RawWorker(channel, "w").open(hello(), read=False)
        batches, size = 5, 1000
        # Frames with no case set, 1000 per Batch: each earns a Notice (AWP-CONN-012), far
        # more than the queue and gRPC's window hold while the worker does not read.
        empty = pb.OpenChannelRequest.Batch(messages=[pb.OpenChannelRequest()] * size)
        for _ in range(batches):
            await worker.send(pb.OpenChannelRequest(batch=empty))
        await eventually(lambda: host.metrics.owed_frames > 0)
        worker.start_reading()
        notices = [(await worker.next_of("notice")).notice for _ in range(batches * size)]
        assert all(n.code == pb.ERROR_CODE_INVALID_REQUEST for n in notices)
        assert host.metrics.frames_invalid == batches * size
        await worker.close()
