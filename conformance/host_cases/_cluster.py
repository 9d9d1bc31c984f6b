"""Host cases for host clusters (spec 18): they need the addresses of two or more nodes."""

from __future__ import annotations

import grpc

from conformance._builders import event, rpc_request, type_subscription
from conformance._cases import CaseSkip, SkipReason
from conformance._host_context import HostContext
from conformance._predicates import event_with_id
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []


def _nodes(ctx: HostContext) -> tuple[str, str]:
    if len(ctx.addresses) < 2:
        raise CaseSkip(SkipReason.NOT_APPLICABLE, "needs the addresses of two or more nodes")
    return ctx.addresses[0], ctx.addresses[1]


async def _open(ctx: HostContext, label: str, address: str) -> RawWorker:
    worker = ctx.worker(label, address=address)
    await worker.open()
    return worker


@host_case("host/cluster/read-your-writes", requirements=["AWP-CLU-006", "AWP-CLU-001"])
async def read_your_writes(ctx: HostContext) -> None:
    """Procedure: on node 1, worker S registers type T and subscribes T to topic X; as soon as
    AddSubscription returns, P on node 2 publishes event E1 on X and calls T. S removes the
    subscription; as soon as RemoveSubscription returns, P publishes E2 on X, then E3 on a
    topic S still subscribes to.

    Asserts: S receives E1 and the call; it receives E3 and not E2."""
    first, second = _nodes(ctx)
    agent_type = ctx.unique("ryw")
    topic, marker = ctx.unique("ryw.topic"), ctx.unique("ryw.marker")
    subscriber = await _open(ctx, "s", first)
    publisher = await _open(ctx, "p", second)
    await subscriber.register(agent_type)
    sub_id = ctx.unique("sub")
    await subscriber.subscribe(type_subscription(sub_id, topic, agent_type))
    await subscriber.subscribe(type_subscription(ctx.unique("sub"), marker, agent_type))
    e1 = event(topic, "k", "e1")
    await publisher.publish(e1)
    await subscriber.data.expect("E1 published on another node", event_with_id(e1.id))
    await publisher.request(rpc_request("r1", agent_type, "k", "x", timeout_ms=10_000))
    await subscriber.expect_request("the call from another node")
    ctx.check_status(
        await subscriber.remove_subscription_status(sub_id),
        grpc.StatusCode.OK,
        "RemoveSubscription",
    )
    e2, e3 = event(topic, "k", "e2"), event(marker, "k", "e3")
    await publisher.publish(e2)
    await publisher.publish(e3)
    await subscriber.data.expect("E3", event_with_id(e3.id))
    ctx.check(
        not any(
            f.WhichOneof("message") == "cloud_event" and f.cloud_event.id == e2.id
            for f in subscriber.data.take_all()
        ),
        "E2 was delivered after RemoveSubscription returned",
    )


@host_case("host/cluster/client-id-unique", requirements=["AWP-CLU-005"])
async def client_id_unique(ctx: HostContext) -> None:
    """Procedure: open a data channel for client-id C on node 1, then one for C on node 2.

    Asserts: the second ends with ALREADY_EXISTS and the first stays open."""
    first, second = _nodes(ctx)
    original = await _open(ctx, "first", first)
    duplicate = ctx.worker("second", address=second, client_id=original.client_id)
    await duplicate.open()
    code = await duplicate.data.wait_end()
    ctx.check(
        code is grpc.StatusCode.ALREADY_EXISTS,
        f"second OpenChannel on another node: expected ALREADY_EXISTS, got "
        f"{code.name if code else 'an open channel'}",
    )
    ctx.check(not original.data.ended, "the first channel ended")
