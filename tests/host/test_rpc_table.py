"""The pending-call table's deadlines (reference_host/_rpc.py), without gRPC: a call to a local
worker has a timer of its own; a call relayed to a worker on another cluster node has only a
shared fallback expiry, since that worker's node ends it at its deadline."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from reference_host._connection import DataConnection, PendingCall
from reference_host._metrics import Metrics
from reference_host._outbound import Outbound
from reference_host._rpc import RpcTable

pytestmark = pytest.mark.asyncio


class _Relayed(DataConnection):
    relayed: ClassVar[bool] = True


def _connection(client_id: str, kind: type[DataConnection] = DataConnection) -> DataConnection:
    return kind(
        client_id,
        client_id,
        Outbound(16, Metrics()),
        v1=True,
        capabilities=frozenset(),
        batching=False,
        shares_types=False,
    )


class _Expiries:
    """Records expired calls; ``wait(count)`` returns once that many have expired."""

    def __init__(self) -> None:
        self.calls: list[PendingCall] = []
        self._changed = asyncio.Event()

    def __call__(self, call: PendingCall) -> None:
        self.calls.append(call)
        self._changed.set()

    async def wait(self, count: int, timeout_s: float = 5.0) -> None:
        async def until() -> None:
            while len(self.calls) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout_s)


async def test_a_local_call_expires_at_its_own_deadline() -> None:
    expired = _Expiries()
    table = RpcTable(asyncio.get_running_loop(), expired)
    caller, target = _connection("caller"), _connection("target")
    call = table.start(caller, "r1", target, 50)
    assert call.handle is not None
    assert call.fallbacks is None
    await expired.wait(1)
    assert expired.calls == [call]
    assert (target.incoming, caller.outgoing, len(table)) == ({}, {}, 0)


async def test_relayed_calls_share_a_fallback_expiry_and_leave_it_when_answered() -> None:
    expired = _Expiries()
    loop = asyncio.get_running_loop()
    table = RpcTable(loop, expired)
    caller, target = _connection("caller"), _connection("remote", _Relayed)
    started = loop.time()
    calls = [table.start(caller, f"r{i}", target, 100) for i in range(10)]
    assert all(call.handle is None and call.fallbacks is not None for call in calls)
    assert len({id(call.fallbacks) for call in calls}) <= 2  # one or two ticks of deadlines
    answered = table.complete(target, calls[0].host_id)
    assert answered is calls[0]
    assert answered.fallbacks is None
    await expired.wait(9)
    assert sorted(c.caller_request_id for c in expired.calls) == [f"r{i}" for i in range(1, 10)]
    # Never before the deadline; at most one tick after it (0.25 s).
    assert loop.time() - started >= 0.1
    assert (target.incoming, caller.outgoing, len(table)) == ({}, {}, 0)


async def test_a_relayed_call_failed_with_its_target_does_not_expire_again() -> None:
    expired = _Expiries()
    table = RpcTable(asyncio.get_running_loop(), expired)
    caller, target = _connection("caller"), _connection("remote", _Relayed)
    call = table.start(caller, "r1", target, 20)
    assert table.fail_target(target) == [call]
    other = table.start(caller, "r2", _connection("local"), 400)
    # The local call's expiry comes well after the relayed call's tick has passed.
    await expired.wait(1)
    assert expired.calls == [other]
