"""The pending-RPC table: host-assigned request ids, correlation and deadlines.

The host gives every forwarded request its own id (``host_id``) and correlates the response by
(target connection, host_id) only, never by the caller's id: two callers may use the same
request_id without seeing each other's replies (AWP-RPC-004). A pending call read from a
worker's channel holds one ``loop.call_at`` timer handle, cancelled when the call completes
(AWP-RPC-010).

Calls that cross cluster nodes share timers instead, in deadline groups (one timer per group):

- A call to a worker on another node: that worker's node ends it at its deadline, and this node
  expires it only if that answer never comes (the node's own loss ends it sooner,
  AWP-CLU-009). Its fallback expiry is rounded up to the next ``_FALLBACK_TICK_S``.
- A call another node relayed here: the calls of one node message were read at one moment, and
  the deadline counts from that read, so calls with the same timeout have the very same
  deadline and expire together, exactly on time.

A call joins or leaves a group with a set insertion or removal; the group's timer is cancelled
when its last call completes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from collections.abc import Callable
from typing import Final

from agentworker.v1 import agentworker_pb2 as pb

from ._connection import DataConnection, DeadlineGroup, PendingCall

# How many forgotten (expired or abandoned) host ids are remembered to classify late responses.
_FORGOTTEN_LIMIT: Final = 8192

# Granularity of the shared fallback timers of relayed calls, in seconds.
_FALLBACK_TICK_S: Final = 0.25

REASON_DEADLINE: Final = pb.ERROR_CODE_DEADLINE_EXCEEDED
REASON_CALLER_GONE: Final = pb.ERROR_CODE_UNSPECIFIED


class RpcTable:
    """Tracks pending calls; they live in their caller's ``outgoing`` and target's ``incoming``."""

    __slots__ = (
        "_count",
        "_forgotten",
        "_groups",
        "_idle",
        "_ids",
        "_loop",
        "_on_expire",
        "prefix",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_expire: Callable[[PendingCall], None]
    ) -> None:
        self._loop = loop
        self._on_expire = on_expire
        self._ids = itertools.count(1)
        # Host ids are the prefix and a counter; a cluster node makes its prefix unique in the
        # cluster, so that another node may keep the id of a call it relays (AWP-CLU-026).
        self.prefix = "h"
        self._count = 0
        self._idle: asyncio.Future[None] | None = None
        # host_id -> (target connection_id, reason the call was forgotten)
        self._forgotten: collections.OrderedDict[str, tuple[str, int]] = collections.OrderedDict()
        # Loop time -> the group of calls that expire then.
        self._groups: dict[float, DeadlineGroup] = {}

    def __len__(self) -> int:
        return self._count

    def start(
        self,
        caller: DataConnection,
        request_id: str,
        target: DataConnection,
        timeout_ms: int,
        host_id: str = "",
        read_at: float | None = None,
    ) -> PendingCall:
        """Record a call from ``caller`` to ``target`` that expires ``timeout_ms`` after it was
        read (at loop time ``read_at`` when given, a moment many calls share; else now), under
        ``host_id`` if given (it must not be pending on ``target``), else under a new id."""
        call = PendingCall(
            host_id or f"{self.prefix}{next(self._ids)}", caller, request_id, target, timeout_ms
        )
        loop = self._loop
        if target.relayed:
            tick = int((loop.time() + timeout_ms / 1000.0) / _FALLBACK_TICK_S) + 1
            self._join(call, tick * _FALLBACK_TICK_S)
        elif read_at is not None:
            self._join(call, read_at + timeout_ms / 1000.0)
        else:
            call.handle = loop.call_at(loop.time() + timeout_ms / 1000.0, self._expire, call)
        caller.outgoing[request_id] = call
        target.incoming[call.host_id] = call
        self._count += 1
        return call

    def _join(self, call: PendingCall, when: float) -> None:
        group = self._groups.get(when)
        if group is None:
            group = self._groups[when] = DeadlineGroup(when)
            group.handle = self._loop.call_at(when, self._expire_group, when)
        group.add(call)
        call.group = group

    def complete(self, target: DataConnection, host_id: str) -> PendingCall | None:
        """Remove and return the call ``host_id`` pending on ``target``, or None."""
        call = target.incoming.pop(host_id, None)
        if call is None:
            return None
        self._finish(call)
        return call

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until no call is pending; return True if none is."""
        if self._count == 0:
            return True
        if timeout_s <= 0:
            return False
        if self._idle is None:
            self._idle = self._loop.create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._idle), timeout_s)
        return self._count == 0

    def forgotten_reason(self, host_id: str, target: DataConnection) -> int | None:
        """Return why ``host_id`` (sent to ``target``) was forgotten, or None if it never was."""
        entry = self._forgotten.get(host_id)
        if entry is None or entry[0] != target.connection_id:
            return None
        del self._forgotten[host_id]
        return entry[1]

    def fail_target(self, target: DataConnection) -> list[PendingCall]:
        """Remove and return every call pending on ``target`` (the target went away)."""
        calls = list(target.incoming.values())
        target.incoming.clear()
        for call in calls:
            self._finish(call)
        return calls

    def drop_caller(self, caller: DataConnection) -> None:
        """Forget every call ``caller`` originated (the caller went away)."""
        calls = list(caller.outgoing.values())
        for call in calls:
            if call.target.incoming.pop(call.host_id, None) is not None:
                self._finish(call)
                self._forget(call, REASON_CALLER_GONE)
        caller.outgoing.clear()

    def _finish(self, call: PendingCall) -> None:
        if call.handle is not None:
            call.handle.cancel()
            call.handle = None
        elif (group := call.group) is not None:
            group.discard(call)
            call.group = None
            if not group and group.handle is not None:
                group.handle.cancel()
                group.handle = None
                del self._groups[group.when]
        outgoing = call.caller.outgoing
        if outgoing.get(call.caller_request_id) is call:
            del outgoing[call.caller_request_id]
        self._count -= 1
        if self._count == 0 and self._idle is not None:
            if not self._idle.done():
                self._idle.set_result(None)
            self._idle = None

    def _forget(self, call: PendingCall, reason: int) -> None:
        forgotten = self._forgotten
        forgotten[call.host_id] = (call.target.connection_id, reason)
        if len(forgotten) > _FORGOTTEN_LIMIT:
            forgotten.popitem(last=False)

    def _expire_group(self, when: float) -> None:
        group = self._groups.pop(when, None)
        if group is None:
            return
        group.handle = None
        for call in list(group):
            call.group = None
            self._expire(call)

    def _expire(self, call: PendingCall) -> None:
        call.handle = None
        if call.target.incoming.pop(call.host_id, None) is None:
            return
        self._finish(call)
        self._forget(call, REASON_DEADLINE)
        self._on_expire(call)
