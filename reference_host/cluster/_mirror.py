"""This node's copy of the cluster's shared state, applied to the local routing tables.

Every node watches the shared key-value bucket and applies each change here, in revision order:
live members (nodes) and their links, client-id claims, agent-type members and subscriptions.
Workers on other nodes enter the local registry as ``RemoteWorker`` stand-ins, so the router
routes to them exactly as to local connections. A member whose lease lapses is lost: its
stand-ins are detached (pending calls end ``TARGET_UNAVAILABLE``) and its routes leave the tables.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from agentworker.v1 import agentworker_pb2 as pb
from reference_host._connection import DataConnection
from reference_host._control import ControlRouter
from reference_host._errors import HostError
from reference_host._logging import log
from reference_host._metrics import Metrics
from reference_host._registry import Registry
from reference_host._router import Router
from reference_host._subscriptions import SubscriptionTable

from . import _codec
from ._link import Link, RemoteControl, RemoteWorker

_logger = logging.getLogger("reference_host.cluster")

OP_PUT: Final = None

MakeLink = Callable[[str, str], Link]


@dataclass(frozen=True, slots=True)
class TypeMember:
    """One worker serving an agent type: its client-id, node member id, and sharing flag."""

    client_id: str
    member: str
    shares: bool


def encode_members(members: list[TypeMember]) -> bytes:
    """Encode the members of an agent type as a shared-state value."""
    return json.dumps([[m.client_id, m.member, m.shares] for m in members]).encode()


def decode_members(value: bytes) -> list[TypeMember]:
    """Decode the members of an agent type (empty for a malformed value)."""
    try:
        raw = json.loads(value)
        return [TypeMember(str(c), str(m), bool(s)) for c, m, s in raw]
    except (ValueError, TypeError):
        return []


def encode_subscription(owner: str, member: str, subscription: pb.Subscription) -> bytes:
    """Encode a subscription with its owner and the owner's node as a shared-state value."""
    body = base64.b64encode(subscription.SerializeToString()).decode("ascii")
    return json.dumps({"owner": owner, "member": member, "sub": body}).encode()


def decode_subscription(value: bytes) -> tuple[str, str, pb.Subscription] | None:
    """Decode a subscription value into (owner, member, subscription), or None if malformed."""
    try:
        raw: dict[str, Any] = json.loads(value)
        subscription = pb.Subscription.FromString(base64.b64decode(raw["sub"]))
        return str(raw["owner"]), str(raw["member"]), subscription
    except (ValueError, TypeError, KeyError):
        return None


class Mirror:
    """Applies shared-state changes to the local registry and subscription table."""

    def __init__(
        self,
        member: str,
        registry: Registry,
        subscriptions: SubscriptionTable,
        router: Router,
        control: ControlRouter,
        metrics: Metrics,
        make_link: MakeLink,
        stall_s: float,
    ) -> None:
        self.member = member
        self._registry = registry
        self._subscriptions = subscriptions
        self._router = router
        self._control = control
        self._metrics = metrics
        self._make_link = make_link
        self._stall_s = stall_s
        self._loop = asyncio.get_running_loop()
        # member -> loop time its lease was last renewed (this node included)
        self.seen: dict[str, float] = {}
        self.links: dict[str, Link] = {}
        self._link_tasks: dict[str, asyncio.Task[None]] = {}
        # client-id -> member, from the claims
        self.clients: dict[str, str] = {}
        self.types: dict[str, list[TypeMember]] = {}
        # subscription id -> (owner, member)
        self.subscription_owners: dict[str, tuple[str, str]] = {}
        # subscription id -> subscription, for every one in the shared state
        self._subscription_pending: dict[str, pb.Subscription] = {}
        self.proxies: dict[str, RemoteWorker] = {}
        self.callers: dict[tuple[str, str], RemoteWorker] = {}
        self.controls: dict[str, RemoteControl] = {}
        # Workers whose node said they left, until their claim changes: the shared state may
        # still list them for a moment, and must not bring their stand-ins back.
        self._departed: set[tuple[str, str]] = set()
        # Called with a member id when a member is lost (to clear its shared state).
        self.on_lost: Callable[[str], None] = lambda member: None
        # Called when this node's own lease or claims vanished from the shared state.
        self.on_evicted: Callable[[], None] = lambda: None

    # -- applying changes ----------------------------------------------------------------

    def apply(self, raw_key: str, value: bytes, operation: str | None) -> None:
        """Apply one change of the shared state."""
        parsed = _codec.parse_key(raw_key)
        if parsed is None:
            return
        kind, name = parsed
        deleted = operation is not OP_PUT
        if kind == _codec.KIND_NODE:
            if deleted:
                if name == self.member:
                    self.on_evicted()
                else:
                    self.lose(name, "left")
            else:
                self._renew(name, value)
        elif kind == _codec.KIND_CLIENT:
            self._apply_claim(name, None if deleted else value.decode())
        elif kind == _codec.KIND_TYPE:
            if deleted:
                self.types.pop(name, None)
            else:
                self.types[name] = decode_members(value)
            self.resolve_type(name)
        elif kind == _codec.KIND_SUBSCRIPTION:
            self._apply_subscription(name, None if deleted else value)

    def _renew(self, member: str, value: bytes) -> None:
        self.seen[member] = self._loop.time()
        if member == self.member or member in self.links:
            return
        try:
            subject = str(json.loads(value)["inbox"])
        except (ValueError, TypeError, KeyError):
            return
        link = self._make_link(member, subject)
        self.links[member] = link
        self._link_tasks[member] = self._loop.create_task(link.run(self._stall_s))
        log(_logger, logging.INFO, "cluster.member_joined", member=member)
        # Routes held back while the member was unknown now resolve.
        for agent_type in [
            t for t, ms in self.types.items() if any(m.member == member for m in ms)
        ]:
            self.resolve_type(agent_type)
        for sub_id, (owner, owner_member) in list(self.subscription_owners.items()):
            if owner_member == member:
                self._subscription_live(sub_id, owner)

    def _apply_claim(self, client_id: str, member: str | None) -> None:
        old = self.clients.pop(client_id, None)
        if old is not None:
            self._departed.discard((old, client_id))
        control = self.controls.get(client_id)
        if control is not None and control.member != member:
            del self.controls[client_id]
            self._control.detach(control)
        if member is not None:
            self.clients[client_id] = member
        elif old == self.member and client_id in self._router.connections:
            # Someone cleared a claim this node still serves: put it back.
            self.on_evicted()
        proxy = self.proxies.get(client_id)
        if proxy is not None and proxy.member != member:
            del self.proxies[client_id]
            self._router.detach(proxy)

    def _apply_subscription(self, sub_id: str, value: bytes | None) -> None:
        previous = self.subscription_owners.pop(sub_id, None)
        if previous is not None:
            self._remove_subscription(previous[0], sub_id)
        if value is None:
            return
        decoded = decode_subscription(value)
        if decoded is None:
            return
        owner, member, subscription = decoded
        self.subscription_owners[sub_id] = (owner, member)
        self._subscription_pending[sub_id] = subscription
        if self.is_live(member) and (member, owner) not in self._departed:
            self._subscription_live(sub_id, owner)

    def _subscription_live(self, sub_id: str, owner: str) -> None:
        subscription = self._subscription_pending.get(sub_id)
        if subscription is None:
            return
        try:
            self._subscriptions.add(owner, subscription)
        except HostError as exc:
            log(_logger, logging.WARNING, "cluster.subscription_conflict", error=str(exc))

    def _remove_subscription(self, owner: str, sub_id: str) -> None:
        self._subscription_pending.pop(sub_id, None)
        with contextlib.suppress(HostError):
            self._subscriptions.remove(owner, sub_id)

    def resolve_type(self, agent_type: str) -> None:
        """Set the local members of ``agent_type`` from the shared state and live members."""
        conns: list[DataConnection] = []
        for entry in self.types.get(agent_type, ()):
            if entry.member == self.member:
                conn = self._router.connections.get(entry.client_id)
                if conn is not None and not conn.closed:
                    conns.append(conn)
            elif (
                entry.member in self.links and (entry.member, entry.client_id) not in self._departed
            ):
                conns.append(self.proxy(entry.client_id, entry.member, entry.shares))
        self._registry.set_members(agent_type, conns)

    # -- stand-ins -----------------------------------------------------------------------

    def is_live(self, member: str) -> bool:
        """Return True for this node and for members whose lease is current."""
        return member == self.member or member in self.links

    def proxy(self, client_id: str, member: str, shares: bool) -> RemoteWorker:
        """Return the stand-in of worker ``client_id`` on ``member``."""
        proxy = self.proxies.get(client_id)
        if proxy is not None and proxy.member == member and not proxy.closed:
            return proxy
        if proxy is not None:
            self._router.detach(proxy)
        proxy = RemoteWorker(client_id, member, self.links[member], self._metrics, shares=shares)
        self.proxies[client_id] = proxy
        return proxy

    def caller(self, member: str, client_id: str) -> RemoteWorker | None:
        """Return the stand-in for calls ``member`` relays to local worker ``client_id``."""
        key = (member, client_id)
        caller = self.callers.get(key)
        if caller is not None and not caller.closed:
            return caller
        link = self.links.get(member)
        if link is None:
            return None
        caller = RemoteWorker(client_id, member, link, self._metrics, shares=False)
        self.callers[key] = caller
        return caller

    def departed(self, member: str, client_id: str) -> None:
        """Worker ``client_id`` left ``member``: remove its routes here before anything else
        ``member`` sends (its failures of calls to the worker follow on the same link)."""
        self._departed.add((member, client_id))
        proxy = self.proxies.get(client_id)
        if proxy is not None and proxy.member == member:
            del self.proxies[client_id]
            self._router.detach(proxy)

    def control_stand_in(self, member: str, client_id: str, v1: bool) -> RemoteControl | None:
        """Return the control stand-in of requester ``client_id`` on ``member``."""
        current = self.controls.get(client_id)
        if current is not None and current.member == member and not current.closed:
            return current
        link = self.links.get(member)
        existing = self._control.connections.get(client_id)
        if link is None or (existing is not None and existing is not current):
            return None
        if current is not None:
            self._control.detach(current)
        stand_in = RemoteControl(client_id, member, link, self._metrics, v1=v1)
        self.controls[client_id] = stand_in
        self._control.connections[client_id] = stand_in
        return stand_in

    def forget_local(self, client_id: str) -> None:
        """Drop the caller stand-ins of a local worker that left."""
        for key in [k for k in self.callers if k[1] == client_id]:
            self._router.detach(self.callers.pop(key))

    # -- loss ----------------------------------------------------------------------------

    def expire(self, lease_s: float) -> None:
        """Lose every member whose lease was not renewed within ``lease_s`` seconds."""
        now = self._loop.time()
        for member, seen in list(self.seen.items()):
            if member != self.member and now - seen > lease_s:
                self.lose(member, "lease expired")

    def lose(self, member: str, reason: str) -> None:
        """Remove ``member``: detach its stand-ins, drop its routes, close its link."""
        self.seen.pop(member, None)
        link = self.links.pop(member, None)
        if link is None:
            return
        link.close()
        task = self._link_tasks.pop(member, None)
        if task is not None:
            task.cancel()
        router = self._router
        for client_id, proxy in list(self.proxies.items()):
            if proxy.member == member:
                del self.proxies[client_id]
                router.detach(proxy)
        for key in [k for k in self.callers if k[0] == member]:
            router.detach(self.callers.pop(key))
        for client_id, control in list(self.controls.items()):
            if control.member == member:
                del self.controls[client_id]
                self._control.detach(control)
        self._departed = {d for d in self._departed if d[0] != member}
        for sub_id, (owner, owner_member) in self.subscription_owners.items():
            if owner_member == member:
                self._remove_subscription_table_only(owner, sub_id)
        for agent_type, entries in list(self.types.items()):
            if any(m.member == member for m in entries):
                self.resolve_type(agent_type)
        log(_logger, logging.WARNING, "cluster.member_lost", member=member, reason=reason)
        self.on_lost(member)

    def _remove_subscription_table_only(self, owner: str, sub_id: str) -> None:
        with contextlib.suppress(HostError):
            self._subscriptions.remove(owner, sub_id)

    def reset(self) -> None:
        """Forget every other member (before rebuilding from a fresh snapshot)."""
        for member in [m for m in self.seen if m != self.member]:
            self.lose(member, "resynchronising")
        self.seen.clear()

    def close(self) -> None:
        """Close every link."""
        for link in self.links.values():
            link.close()
        for task in self._link_tasks.values():
            task.cancel()
        self.links.clear()
        self._link_tasks.clear()
