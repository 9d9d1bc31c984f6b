"""The pending-call table's deadlines (reference_host/_rpc.py), without gRPC: a call read from a
local worker has a timer of its own; a call relayed to a worker on another cluster node has only
a shared fallback expiry, since that worker's node ends it at its deadline; calls another node
relayed here, read in one message, share one exact deadline and one timer."""

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
    assert call.group is None
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
    assert all(call.handle is None and call.group is not None for call in calls)
    assert len({id(call.group) for call in calls}) <= 2  # one or two ticks of deadlines
    answered = table.complete(target, calls[0].host_id)
    assert answered is calls[0]
    assert answered.group is None
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


def _table_at_a_worker() -> tuple[
    _Expiries, asyncio.AbstractEventLoop, RpcTable, DataConnection, DataConnection
]:
    """Return a table, its expiries, and a worker with a caller on another node."""
    expired = _Expiries()
    loop = asyncio.get_running_loop()
    table = RpcTable(loop, expired)
    return expired, loop, table, _connection("remote caller", _Relayed), _connection("worker")


def _read_together(
    table: RpcTable,
    caller: DataConnection,
    target: DataConnection,
    count: int,
    timeout_ms: int,
    read_at: float,
) -> list[PendingCall]:
    """Start ``count`` relayed calls h0, h1, ... read in one node message at ``read_at``."""
    return [
        table.start(caller, f"h{i}", target, timeout_ms, f"h{i}", read_at) for i in range(count)
    ]


async def test_calls_read_together_share_one_exact_deadline() -> None:
    expired, loop, table, caller, target = _table_at_a_worker()
    read_at = loop.time()
    calls = _read_together(table, caller, target, 5, 80, read_at)
    later = table.start(caller, "h9", target, 80, "h9", read_at + 0.05)
    group = calls[0].group
    assert group is not None
    assert all(call.group is group for call in calls)
    assert later.group is not None
    assert later.group is not group
    assert all(call.handle is None for call in [*calls, later])
    assert table.complete(target, "h0") is calls[0]
    await expired.wait(4)
    # On time: not before the deadline counted from the read (the loop's timers may run up to
    # its clock resolution early).
    assert loop.time() >= read_at + 0.08 - 0.001
    assert sorted(c.caller_request_id for c in expired.calls) == ["h1", "h2", "h3", "h4"]
    await expired.wait(5)
    assert expired.calls[-1] is later
    assert (target.incoming, caller.outgoing, len(table)) == ({}, {}, 0)


async def test_a_group_whose_calls_all_complete_cancels_its_timer() -> None:
    _, loop, table, caller, target = _table_at_a_worker()
    read_at = loop.time()
    calls = _read_together(table, caller, target, 3, 60_000, read_at)
    group = calls[0].group
    assert group is not None
    assert group.handle is not None
    handle = group.handle
    for call in calls:
        table.complete(target, call.host_id)
    assert handle.cancelled()
    assert all(call.group is None for call in calls)
    # A later call with the same deadline gets a group and a timer of its own.
    again = table.start(caller, "h7", target, 60_000, "h7", read_at)
    assert again.group is not None
    assert again.group is not group
    assert again.group.handle is not None
    assert not again.group.handle.cancelled()
    table.complete(target, "h7")
