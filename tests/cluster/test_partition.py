"""One node cut off from NATS while the others keep it (AWP-CLU-009, -010, -012, -013, -017,
-018).

Node b reaches NATS through a TCP proxy the test cuts (b's connection is reset) or freezes (b's
connection stays open and falls silent): b loses the shared state while a and c keep it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agentworker.v1 import agentworker_pb2 as pb
from reference_host.cluster._proxy import TcpProxy
from reference_host.cluster.nats_server import NatsServer
from tests.cluster.conftest import LEASE_MS, ConnectTo, StartNode
from tests.host._raw import (
    TIMEOUT_S,
    Api,
    Closed,
    RawWorker,
    event,
    hello,
    payload,
    retry_while,
    type_sub,
)

pytestmark = pytest.mark.asyncio

# The spec's bound for the others to drop a lost node is 2 x lease; the slack is for a loaded
# machine. Calls carry a deadline far beyond both, so an answer within them is not the deadline.
LEASE_S = LEASE_MS / 1000
LOSS_BOUND_S = 2 * LEASE_S
SLACK_S = 5.0
CALL_DEADLINE_MS = 120_000
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest_asyncio.fixture
async def proxy(nats_server: NatsServer) -> AsyncIterator[TcpProxy]:
    started = await TcpProxy("127.0.0.1", nats_server.port).start()
    yield started
    await started.close()


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
        return int(reply.status)


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float) -> float:
    """Poll ``check`` until it holds; return when it did (loop time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"not within {within:.1f} s: {what}"
        await asyncio.sleep(0.05)
    return loop.time()


async def _subscription_ids(port: int) -> list[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        listed = await Api(channel).get_subscriptions((("client-id", "observer"),))
        return sorted(s.id for s in listed.subscriptions)


@pytest.mark.slow
@pytest.mark.requirement("AWP-CLU-009", "AWP-CLU-010", "AWP-CLU-012", "AWP-CLU-013")
async def test_partitioned_node_refuses_work_others_drop_it_and_it_comes_back(
    proxy: TcpProxy, start_node: StartNode, connect_to: ConnectTo
) -> None:
    a, c = await start_node("a"), await start_node("c")
    b = await start_node("b", servers=proxy.url)
    kept = await connect_to(b.port, "kept", hello())
    await kept.register("echo")
    await kept.subscribe(type_sub("kept-sub", "news", "echo"))
    taken = await connect_to(b.port, "taken", hello())
    caller = await connect_to(a.port, "caller", hello())
    await caller.request("r1", "echo", timeout_ms=CALL_DEADLINE_MS)
    await kept.next_of("request")
    loop = asyncio.get_running_loop()

    proxy.cut()
    cut_at = loop.time()
    # b stops taking work it cannot route (AWP-CLU-012).
    await _until(lambda: _is(b.port, NOT_SERVING), "b reports NOT_SERVING", TIMEOUT_S)
    assert (await kept.next_of("notice")).notice.code == pb.ERROR_CODE_SHUTTING_DOWN
    assert (await taken.next_of("notice")).notice.code == pb.ERROR_CODE_SHUTTING_DOWN
    with pytest.raises(Closed) as refused:
        await connect_to(b.port, "newcomer", hello())
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    for unary in (
        lambda: kept.register("other"),
        lambda: kept.subscribe(type_sub("late-sub", "news", "echo")),
        lambda: kept.api.remove_subscription("kept-sub", kept.metadata),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await unary()
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    await kept.request("from-b", "echo", timeout_ms=CALL_DEADLINE_MS)
    assert (await kept.next_of("response")).response.error_code == pb.ERROR_CODE_SHUTTING_DOWN

    # The call pending at b's worker ends TARGET_UNAVAILABLE within the bound (AWP-CLU-009).
    answer = (await caller.next_of("response", LOSS_BOUND_S + SLACK_S)).response
    assert answer.request_id == "r1"
    assert answer.error_code == pb.ERROR_CODE_TARGET_UNAVAILABLE
    assert loop.time() - cut_at < LOSS_BOUND_S + SLACK_S
    # b's registrations, subscriptions and claims leave a and c (AWP-CLU-010).
    await _until(lambda: _subscriptions_gone(a.port, c.port), "b's subscription leaves", SLACK_S)
    await caller.request("r2", "echo", timeout_ms=CALL_DEADLINE_MS)
    answer = (await caller.next_of("response")).response
    assert answer.error_code == pb.ERROR_CODE_UNKNOWN_TARGET
    usurper = await retry_while(
        grpc.StatusCode.ALREADY_EXISTS, lambda: connect_to(c.port, "taken", hello()), SLACK_S
    )
    assert loop.time() - cut_at < LOSS_BOUND_S + SLACK_S

    # Back: b serves again without its workers reconnecting (AWP-CLU-013) ...
    await proxy.restore()
    await _until(lambda: _is(b.port, SERVING), "b serves again", TIMEOUT_S * 3)
    # ... and the claim c took meanwhile wins: b ends its own channel for that client-id.
    assert await taken.wait_ended(TIMEOUT_S) == grpc.StatusCode.ALREADY_EXISTS
    assert not usurper.ended.is_set()
    assert not kept.ended.is_set()
    # kept's registration and subscription route again from a.
    await _until(lambda: _has_subscription(a.port), "kept-sub is back on a", TIMEOUT_S * 3)
    await _until_a_call_reaches(caller, kept, "r3")
    await caller.publish(event("news", event_id="after"))
    assert (await kept.next_of("cloud_event")).cloud_event.id == "after"


@pytest.mark.requirement("AWP-CLU-012", "AWP-CLU-013", "AWP-CLU-017")
async def test_node_whose_connection_falls_silent_stops_serving_within_the_lease(
    proxy: TcpProxy, start_node: StartNode, connect_to: ConnectTo
) -> None:
    a = await start_node("a")
    b = await start_node("b", servers=proxy.url)
    kept = await connect_to(b.port, "kept", hello())
    await kept.register("echo")
    caller = await connect_to(a.port, "caller", hello())
    loop = asyncio.get_running_loop()
    proxy.freeze()
    frozen_at = loop.time()
    # b's connection looks open, but no renewal gets through: it stops serving once its last
    # renewal is a lease period old, before the others drop it (AWP-CLU-017).
    await _until(lambda: _is(b.port, NOT_SERVING), "b reports NOT_SERVING", LEASE_S + SLACK_S)
    silent_for = loop.time() - frozen_at
    assert (await kept.next_of("notice")).notice.code == pb.ERROR_CODE_SHUTTING_DOWN
    await kept.request("from-b", "echo", timeout_ms=CALL_DEADLINE_MS)
    assert (await kept.next_of("response")).response.error_code == pb.ERROR_CODE_SHUTTING_DOWN
    proxy.thaw()
    await _until(lambda: _is(b.port, SERVING), "b serves again", TIMEOUT_S * 3)
    await _until_a_call_reaches(caller, kept, "r")
    assert silent_for < LEASE_S + SLACK_S


@pytest.mark.requirement("AWP-CLU-018", "AWP-CLU-002")
async def test_events_published_on_a_cut_off_node_reach_no_worker_and_are_counted(
    proxy: TcpProxy, start_node: StartNode, connect_to: ConnectTo
) -> None:
    a = await start_node("a")
    b = await start_node("b", servers=proxy.url)
    # Subscribers on the publisher's own node and on another node.
    near = await connect_to(b.port, "near", hello())
    await near.register("near-agent")
    await near.subscribe(type_sub("near-sub", "news", "near-agent"))
    far = await connect_to(a.port, "far", hello())
    await far.register("far-agent")
    await far.subscribe(type_sub("far-sub", "news", "far-agent"))
    publisher = await connect_to(b.port, "publisher", hello())
    await publisher.publish(event("news", event_id="before"))
    for receiver in (near, far):
        assert (await receiver.next_of("cloud_event")).cloud_event.id == "before"

    proxy.cut()
    await _until(lambda: _is(b.port, NOT_SERVING), "b reports NOT_SERVING", TIMEOUT_S)
    # The one notice that tells a v1 publisher its events go nowhere from now on.
    assert (await publisher.next_of("notice")).notice.code == pb.ERROR_CODE_SHUTTING_DOWN
    delivered_on_b = b.metrics.events_delivered
    for i in range(3):
        await publisher.publish(event("news", event_id=f"cut-{i}"))
    # b read the three events and counted each as dropped, delivering none (AWP-CLU-018).
    await _until(
        lambda: _holds(b.metrics.events_dropped_cut_off == 3), "b counts 3 dropped", TIMEOUT_S
    )
    assert b.metrics.events_delivered == delivered_on_b

    await proxy.restore()
    await _until(lambda: _is(b.port, SERVING), "b serves again", TIMEOUT_S * 3)
    await _until(
        lambda: _subscriptions_are(b.port, {"near-sub", "far-sub"}),
        "b routes by both subscriptions again",
        TIMEOUT_S * 3,
    )
    # Events flow again, in publish order, and no event of the outage arrives late: each
    # receiver's next events are exactly these (AWP-CLU-002).
    after = [f"after-{i}" for i in range(5)]
    for event_id in after:
        await publisher.publish(event("news", event_id=event_id))
    for receiver in (near, far):
        received = [(await receiver.next_of("cloud_event")).cloud_event.id for _ in after]
        assert received == after
    assert b.metrics.events_dropped_cut_off == 3


async def _holds(value: bool) -> bool:
    return value


async def _subscriptions_are(port: int, wanted: set[str]) -> bool:
    return wanted <= set(await _subscription_ids(port))


async def _is(port: int, status: int) -> bool:
    return await _health(port) == status


async def _subscriptions_gone(*ports: int) -> bool:
    for port in ports:
        if "kept-sub" in await _subscription_ids(port):
            return False
    return True


async def _has_subscription(port: int) -> bool:
    return "kept-sub" in await _subscription_ids(port)


async def _answer_requests(worker: RawWorker) -> None:
    while True:
        request = (await worker.next_of("request", 3600)).request
        await worker.respond(request.request_id, payload("back"))


async def _until_a_call_reaches(caller: RawWorker, kept: RawWorker, prefix: str) -> None:
    """Call type `echo` from ``caller`` until a call reaches ``kept`` again (its routes are
    back) rather than ending UNKNOWN_TARGET; ``kept`` answers meanwhile."""
    attempt = 0

    async def call_reaches_kept() -> bool:
        nonlocal attempt
        attempt += 1
        await caller.request(f"{prefix}-{attempt}", "echo", timeout_ms=CALL_DEADLINE_MS)
        answer = (await caller.next_of("response")).response
        if answer.error_code == pb.ERROR_CODE_UNKNOWN_TARGET:
            return False
        assert answer.payload == payload("back"), answer
        return True

    responder = asyncio.create_task(_answer_requests(kept))
    try:
        await _until(call_reaches_kept, "a call from a reaches kept on b", TIMEOUT_S * 3)
    finally:
        responder.cancel()
