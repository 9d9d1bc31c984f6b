"""A call another cluster node relayed to a local worker (Router.relay_call), without gRPC: its
deadline counts from the read of the node message that carried it, and a full queue at the
worker is answered OVERLOADED, naming the target type read from the still-encoded frame."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import _wire
from reference_host._config import HostConfig
from reference_host._connection import DataConnection
from reference_host._metrics import Metrics
from reference_host._outbound import Outbound
from reference_host._registry import Registry
from reference_host._router import Router
from reference_host._subscriptions import SubscriptionTable

pytestmark = pytest.mark.asyncio


class _Recording(Outbound):
    """An outbound queue that keeps every frame offered to it."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit, Metrics())
        self.frames: list[bytes] = []

    def offer(self, frame: bytes) -> bool:
        accepted = super().offer(frame)
        if accepted:
            self.frames.append(frame)
        return accepted


class _OtherNode(DataConnection):
    relayed: ClassVar[bool] = True


def _connection(client_id: str, outbound: Outbound, kind: type[DataConnection]) -> DataConnection:
    return kind(
        client_id,
        client_id,
        outbound,
        v1=True,
        capabilities=frozenset(),
        batching=False,
        shares_types=False,
    )


def _request_frame(host_id: str) -> bytes:
    request = pb.RpcRequest(
        request_id=host_id,
        target=pb.AgentId(type="echo", key="k"),
        method="m",
        payload=pb.Payload(data_type="t", data_content_type="application/json", data=b"{}"),
    )
    return _wire.frame(_wire.TAG_REQUEST, request.SerializeToString())


def _router() -> Router:
    return Router(HostConfig(), Metrics(), Registry(allow_sharing=True), SubscriptionTable())


async def test_relayed_calls_of_one_message_share_the_deadline_of_its_read() -> None:
    router = _router()
    worker_queue = _Recording(16)
    worker = _connection("worker", worker_queue, DataConnection)
    router.connections["worker"] = worker
    caller = _connection("caller", _Recording(16), _OtherNode)
    read_at = asyncio.get_running_loop().time() - 0.5
    for host_id in ("n1-1", "n1-2"):
        assert router.relay_call(caller, "worker", host_id, 2_000, _request_frame(host_id), read_at)
    first, second = worker.incoming["n1-1"], worker.incoming["n1-2"]
    assert first.group is not None
    assert first.group is second.group
    assert first.group.when == pytest.approx(read_at + 2.0)
    # Forwarded as they came, under the sending node's ids.
    assert worker_queue.frames == [_request_frame("n1-1"), _request_frame("n1-2")]


async def test_a_full_worker_queue_answers_overloaded_naming_the_type() -> None:
    router = _router()
    worker_queue = _Recording(1)
    worker = _connection("worker", worker_queue, DataConnection)
    router.connections["worker"] = worker
    assert worker_queue.offer(b"\x1a\x00")  # the queue's one place is taken
    caller_queue = _Recording(16)
    caller = _connection("caller", caller_queue, _OtherNode)
    loop = asyncio.get_running_loop()
    assert router.relay_call(caller, "worker", "n1-3", 2_000, _request_frame("n1-3"), loop.time())
    assert worker.incoming == {}
    [answer] = caller_queue.frames
    response = pb.OpenChannelResponse.FromString(answer).response
    assert response.request_id == "n1-3"
    assert response.error_code == pb.ERROR_CODE_OVERLOADED
    assert "'echo'" in response.error
