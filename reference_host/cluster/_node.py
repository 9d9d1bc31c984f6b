"""A host node of a cluster: NATS connection, leases and shared state.

Shared state lives in one JetStream key-value bucket, ``awp_<cluster name>``, watched by every
node (see ``_mirror``). Decisions that must be cluster-wide (a client-id claim, the members of an
agent type, a subscription id) are compare-and-set writes on that bucket. After a write at
revision R the node asks every live member to confirm it has applied R before the worker's call
returns (read-your-writes, AWP-CLU-006).

Subjects (``P`` = ``awp.<cluster name>``): ``P.n.<member>`` carries frames to a member and
``P.a.<member>`` acknowledgements of them (see ``_inbound``), ``P.s.<member>`` answers "have you
applied revision R?".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
from typing import Any, Final

import grpc
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import _health
from reference_host._config import ClusterConfig, HostConfig
from reference_host._connection import ControlConnection, DataConnection
from reference_host._control import ControlRouter
from reference_host._errors import AlreadyExists, NotFound, PermissionDenied, Unavailable
from reference_host._logging import log
from reference_host._metrics import Metrics
from reference_host._registry import Registry
from reference_host._router import Router
from reference_host._servicer import SERVICE_NAME
from reference_host._subscriptions import SubscriptionTable

from . import _codec
from ._bounded import finish_within
from ._control_relay import ControlRelay
from ._inbound import Inbound
from ._link import Link
from ._mirror import (
    Mirror,
    TypeMember,
    decode_members,
    decode_subscription,
    encode_members,
    encode_subscription,
)

_logger = logging.getLogger("reference_host.cluster")

# Bytes a link may queue for one peer before senders wait (backpressure), and bytes it may have
# sent and not yet seen acknowledged.
_LINK_LIMIT_BYTES: Final = 8 * 1024 * 1024
_LINK_WINDOW_BYTES: Final = 8 * 1024 * 1024
# How long a node tries to reach NATS at start before it gives up.
_CONNECT_DEADLINE_S: Final = 10.0
# Compare-and-set attempts before a contended write gives up.
_CAS_ATTEMPTS: Final = 50
# Prefix of the claim name of a client's control channel; NUL never occurs in a client-id (a
# gRPC metadata value), so it cannot collide with a data-channel claim.
_CONTROL_CLAIM: Final = "\x00control:"


class ClusterNode:
    """One node of a host cluster; also the host's ``Directory`` (see ``_directory``)."""

    def __init__(
        self,
        cluster: ClusterConfig,
        config: HostConfig,
        metrics: Metrics,
        registry: Registry,
        subscriptions: SubscriptionTable,
        router: Router,
        control: ControlRouter,
        health: _health.HealthService,
    ) -> None:
        self._cluster = cluster
        self._config = config
        self._metrics = metrics
        self._router = router
        self._control = control
        self._health = health
        self.node_id = cluster.node_id or f"node-{secrets.token_hex(3)}"
        # The member id names this run of the node: a restarted node is a new member.
        token = secrets.token_hex(4)
        self.member = f"{self.node_id}-{token}"
        # Host ids unique in the cluster: a node relays a call under the caller's node's id.
        router.set_call_id_prefix(f"h{token}.")
        self._prefix = f"awp.{cluster.name}"
        self._bucket = f"awp_{cluster.name}"
        self._lease_s = cluster.lease_ms / 1000.0
        self._loop = asyncio.get_running_loop()
        self._nc: NatsClient | None = None
        self._kv: KeyValue | None = None
        self._mirror = Mirror(
            self.member,
            registry,
            subscriptions,
            router,
            control,
            metrics,
            self._make_link,
            stall_s=2 * self._lease_s + config.slow_consumer_timeout_ms / 1000.0,
        )
        self._control_relay = ControlRelay(
            self._mirror, control, self._loop, grace_s=2 * self._lease_s
        )
        control.relay = self._control_relay.relay
        self._inbound = Inbound(
            self.member,
            self._prefix,
            self._mirror,
            router,
            control,
            self._control_relay,
            metrics,
            self._loop,
        )
        self._mirror.on_lost = self._on_member_lost
        self._mirror.on_evicted = self._on_evicted
        self._applied = 0
        self._applied_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event = asyncio.Event()
        # What local workers hold, to give it up when they leave or to restore it after a
        # NATS outage: client-id -> (connection, claim revision), agent types, subscriptions.
        self._claims: dict[str, tuple[DataConnection, int]] = {}
        # Control channels open here, by client-id (their claims use _CONTROL_CLAIM names).
        self._control_claims: dict[str, ControlConnection] = {}
        self._owned_types: dict[str, set[str]] = {}
        self._owned_subscriptions: dict[str, dict[str, pb.Subscription]] = {}
        self._releasing: dict[str, asyncio.Task[None]] = {}
        self.available = False
        self._leaving = False
        # events_dropped_cut_off when this node last stopped serving, to log the outage's share.
        self._dropped_before_cut = 0
        # Fires once this node's lease has gone a whole period without a renewal, so that it
        # stops serving before the others drop it (AWP-CLU-017); re-armed by every renewal.
        self._lease_watchdog: asyncio.TimerHandle | None = None
        # The lease lapsed on a connection that did not close: the heartbeat keeps renewing
        # and rejoins once a renewal gets through.
        self._lapsed = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to NATS, load the shared state and join the cluster."""
        cluster = self._cluster
        options: dict[str, Any] = {}
        if cluster.tls_ca is not None or cluster.tls_cert is not None:
            context = ssl.create_default_context(cafile=cluster.tls_ca)
            if cluster.tls_cert is not None and cluster.tls_key is not None:
                context.load_cert_chain(cluster.tls_cert, cluster.tls_key)
            options["tls"] = context
        if cluster.credentials is not None:
            options["user_credentials"] = cluster.credentials
        try:
            # Reconnects are retried forever, and so would the first connection be: bound it.
            self._nc = await finish_within(
                self._connect(options), _CONNECT_DEADLINE_S, discard=lambda nc: nc.close()
            )
        except Exception as exc:
            raise OSError(f"cannot connect to NATS at {cluster.shown_servers()}: {exc!r}") from exc
        nc = self._nc
        js = nc.jetstream()
        try:
            self._kv = await js.key_value(self._bucket)
        except nats.js.errors.BucketNotFoundError:
            self._kv = await js.create_key_value(bucket=self._bucket, history=1)
        self._inbound.nc = nc
        self._inbound.subscription = await nc.subscribe(
            f"{self._prefix}.n.{self.member}",
            cb=self._inbound.on_frames,
            pending_msgs_limit=1_000_000,
            pending_bytes_limit=512 * 1024 * 1024,
        )
        await nc.subscribe(f"{self._prefix}.s.{self.member}", cb=self._on_sync)
        await nc.subscribe(f"{self._prefix}.a.{self.member}", cb=self._inbound.on_ack)
        self._watch_task = self._loop.create_task(self._watch())
        await asyncio.wait_for(self._ready.wait(), 30)
        await self._renew_lease()
        self._beat_task = self._loop.create_task(self._heartbeat())
        self.available = True
        log(
            _logger,
            logging.INFO,
            "cluster.joined",
            node_id=self.node_id,
            member=self.member,
            cluster=cluster.name,
            lease_ms=cluster.lease_ms,
            members=sorted(self._mirror.seen),
        )

    async def _connect(self, options: dict[str, Any]) -> NatsClient:
        return await nats.connect(
            servers=list(self._cluster.servers),
            name=f"agentworker-host {self.member}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            connect_timeout=5,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            error_cb=self._on_error,
            **options,
        )

    async def leave(self) -> None:
        """Leave the cluster: the other members stop routing here at once."""
        if self._leaving or self._kv is None:
            return
        self._leaving = True
        if self._beat_task is not None:
            self._beat_task.cancel()
        # Say on every link that this node's workers left, behind the answers already queued
        # to other nodes' calls, so that a caller that got one no longer routes here.
        for client_id in self._claims:
            for link in self._mirror.links.values():
                link.put(client_id.encode(), _codec.WORKER_LEFT)
        # Let the link writers publish what is queued first.
        await asyncio.sleep(0)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.flush(), self._lease_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._kv.delete(_codec.key(_codec.KIND_NODE, self.member)), self._lease_s
            )
        # Best effort: the others clear what is left once they see the lease gone.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._clear_member(self.member), self._lease_s)

    async def stop(self) -> None:
        """Leave (if not done) and close the NATS connection."""
        await self.leave()
        if self._lease_watchdog is not None:
            self._lease_watchdog.cancel()
        for task in (self._watch_task, self._beat_task, *self._tasks):
            if task is not None:
                task.cancel()
        self._mirror.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5)

    # -- leases and membership -----------------------------------------------------------

    async def _renew_lease(self) -> None:
        assert self._kv is not None
        value = json.dumps(
            {"inbox": f"{self._prefix}.n.{self.member}", "node_id": self.node_id}
        ).encode()
        sent_at = self._loop.time()
        await self._kv.put(_codec.key(_codec.KIND_NODE, self.member), value)
        # The others saw this renewal after it was sent, so they keep this node for at least
        # a lease period from ``sent_at``: stop serving by then unless a renewal follows.
        if self._lease_watchdog is not None:
            self._lease_watchdog.cancel()
        self._lease_watchdog = self._loop.call_at(sent_at + self._lease_s, self._lease_lapsed)

    def _lease_lapsed(self) -> None:
        if self._leaving or not self.available:
            return
        self._lapsed = True
        log(_logger, logging.WARNING, "cluster.lease_lapsed", member=self.member)
        self._stop_serving()

    async def _heartbeat(self) -> None:
        interval = self._lease_s / 4
        while True:
            await asyncio.sleep(interval)
            self._mirror.expire(self._lease_s)
            lapsed = self._lapsed and self._nc is not None and self._nc.is_connected
            if not (self.available or lapsed):
                continue
            try:
                await asyncio.wait_for(self._renew_lease(), self._lease_s)
            except Exception as exc:  # NATS trouble shows in the callbacks too
                log(_logger, logging.WARNING, "cluster.lease_renewal_failed", error=repr(exc))
                continue
            if lapsed and not self.available and self._lapsed:
                # Through again on the same connection: rejoin as after a reconnect.
                self._lapsed = False
                self._spawn(self._rejoin())

    def _make_link(self, member: str, subject: str) -> Link:
        assert self._nc is not None
        return Link(
            member,
            subject,
            self.member,
            self._publish,
            self._metrics,
            acknowledgement=lambda: self._inbound.carried_ack(member),
            max_payload=self._nc.max_payload,
            limit_bytes=_LINK_LIMIT_BYTES,
            window=_LINK_WINDOW_BYTES,
        )

    async def _publish(self, subject: str, payload: bytes) -> None:
        assert self._nc is not None
        await self._nc.publish(subject, payload)

    def _on_member_lost(self, member: str) -> None:
        self._control_relay.member_lost(member)
        # One live member clears the lost member's shared state: the lowest id.
        if self.available and min(self._mirror.links.keys() | {self.member}) == self.member:
            self._spawn(self._clear_member_logged(member))

    async def _clear_member_logged(self, member: str) -> None:
        try:
            await self._clear_member(member)
        except Exception as exc:  # another member or a later loss retries
            log(_logger, logging.WARNING, "cluster.clear_failed", member=member, error=repr(exc))

    async def _clear_member(self, member: str) -> None:
        """Delete every claim, type membership and subscription of ``member``."""
        kv = self._kv
        assert kv is not None
        mirror = self._mirror
        for client_id, owner in list(mirror.clients.items()):
            if owner == member:
                await self._delete_if(_codec.key(_codec.KIND_CLIENT, client_id), member.encode())
        for agent_type, entries in list(mirror.types.items()):
            if any(m.member == member for m in entries):
                await self._update_members(
                    agent_type, lambda ms: [m for m in ms if m.member != member]
                )
        for sub_id, (_, owner_member) in list(mirror.subscription_owners.items()):
            if owner_member == member:
                key = _codec.key(_codec.KIND_SUBSCRIPTION, sub_id)
                with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                    entry = await kv.get(key)
                    decoded = decode_subscription(entry.value or b"")
                    if decoded is not None and decoded[1] == member:
                        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                            await self._delete(key, entry.revision or 0)
        if member != self.member:
            with contextlib.suppress(Exception):
                await kv.delete(_codec.key(_codec.KIND_NODE, member))

    # -- the watch -----------------------------------------------------------------------

    async def _watch(self) -> None:
        assert self._kv is not None
        watcher = await self._kv.watchall()
        try:
            while True:
                entry = await watcher.updates(timeout=3600)  # type: ignore[no-untyped-call]
                if entry is None:
                    self._ready.set()
                    continue
                self._mirror.apply(entry.key, entry.value or b"", entry.operation)
                revision = entry.revision or 0
                if revision > self._applied:
                    self._applied = revision
                    self._wake_applied()
        except nats.errors.TimeoutError:
            self._spawn(self._restart_watch())
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _wake_applied(self) -> None:
        waiters = self._applied_waiters
        if not waiters:
            return
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for revision, future in waiters:
            if revision <= self._applied:
                if not future.done():
                    future.set_result(None)
            else:
                keep.append((revision, future))
        self._applied_waiters = keep

    async def _applied_at_least(self, revision: int, timeout_s: float) -> bool:
        if self._applied >= revision:
            return True
        future: asyncio.Future[None] = self._loop.create_future()
        self._applied_waiters.append((revision, future))
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return self._applied >= revision
        return True

    async def _restart_watch(self) -> None:
        task = self._watch_task
        # Cancel until it ends: asyncio.wait_for (inside the watcher) swallows a cancellation
        # that arrives as an update does (Python 3.11), and the old watch would run on.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=self._lease_s / 4)
        self._ready.clear()
        self._applied = 0
        self._mirror.reset()
        self._watch_task = self._loop.create_task(self._watch())
        await asyncio.wait_for(self._ready.wait(), 30)

    # -- read-your-writes ----------------------------------------------------------------

    async def _sync(self, revision: int) -> None:
        """Return once every live member has applied ``revision`` (AWP-CLU-006)."""
        bound = 2 * self._lease_s
        if not await self._applied_at_least(revision, bound):
            raise Unavailable("this node could not read the cluster state back in time")
        peers = [m for m in self._mirror.links if m != self.member]
        if peers:
            await asyncio.gather(*(self._sync_peer(peer, revision, bound) for peer in peers))

    async def _sync_peer(self, peer: str, revision: int, bound: float) -> None:
        assert self._nc is not None
        deadline = self._loop.time() + bound
        while peer in self._mirror.links:
            try:
                await self._nc.request(
                    f"{self._prefix}.s.{peer}", str(revision).encode(), timeout=self._lease_s
                )
                return
            except nats.errors.NoRespondersError:
                # The member no longer listens: it is gone and its lease will lapse.
                return
            except nats.errors.TimeoutError:
                if self._loop.time() >= deadline:
                    raise Unavailable(
                        f"cluster node {peer!r} did not confirm the change in time"
                    ) from None

    async def _on_sync(self, msg: Msg) -> None:
        try:
            revision = int(msg.data)
        except ValueError:
            return
        if self._applied >= revision and not self._releasing:
            await msg.respond(b"")
            return

        async def answer() -> None:
            # Also let workers that already left finish giving up what they held, so the
            # asking node sees it gone (see _settle).
            await self._released(2 * self._lease_s)
            if await self._applied_at_least(revision, 2 * self._lease_s):
                await msg.respond(b"")

        self._spawn(answer())

    async def _released(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` until the releases under way now are written."""
        if self._releasing:
            await asyncio.wait(set(self._releasing.values()), timeout=timeout_s)

    async def _settle(self, member: str) -> None:
        """Wait until ``member`` has written the releases of workers that left it.

        A worker that saw another's channel end may act on it at once on any node (register
        the type, reuse the client-id or subscription id); the conflicting entry it then meets
        may be one that ``member`` is still deleting.
        """
        if member == self.member:
            await self._released(2 * self._lease_s)
            return
        if member not in self._mirror.links:
            return
        assert self._nc is not None
        with contextlib.suppress(nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await self._nc.request(f"{self._prefix}.s.{member}", b"0", timeout=2 * self._lease_s)

    # -- NATS connection state -----------------------------------------------------------

    async def _on_disconnected(self) -> None:
        if self._leaving or not self.available:
            return
        log(_logger, logging.WARNING, "cluster.nats_lost", member=self.member)
        self._stop_serving()

    def _stop_serving(self) -> None:
        """Stop taking work this node cannot route (AWP-CLU-012)."""
        self.available = False
        self._health.set("", _health.NOT_SERVING)
        self._health.set(SERVICE_NAME, _health.NOT_SERVING)
        # Events local workers publish from now on go nowhere, counted (AWP-CLU-018).
        self._router.cut_off = True
        self._dropped_before_cut = self._metrics.events_dropped_cut_off
        self._router.begin_drain()

    async def _on_reconnected(self) -> None:
        if self._leaving:
            return
        self._lapsed = False  # this rejoin covers a lapsed lease too
        self._spawn(self._rejoin())

    async def _on_error(self, exc: Exception) -> None:
        log(_logger, logging.WARNING, "cluster.nats_error", error=repr(exc))

    async def _rejoin(self) -> None:
        log(_logger, logging.INFO, "cluster.nats_back", member=self.member)
        try:
            await self._restart_watch()
            await self._renew_lease()
            await self._restore()
        except Exception as exc:  # retried by the heartbeat, or on the next reconnect
            log(_logger, logging.ERROR, "cluster.rejoin_failed", error=repr(exc))
            self._lapsed = True
            return
        self._router.draining = False
        self._router.cut_off = False
        self.available = True
        dropped = self._metrics.events_dropped_cut_off - self._dropped_before_cut
        if dropped:
            log(_logger, logging.WARNING, "cluster.events_dropped_cut_off", count=dropped)
        self._health.set("", _health.SERVING)
        self._health.set(SERVICE_NAME, _health.SERVING)
        log(_logger, logging.INFO, "cluster.rejoined", member=self.member)

    def _on_evicted(self) -> None:
        if self.available and not self._leaving:
            self._spawn(self._restore_after_eviction())

    async def _restore_after_eviction(self) -> None:
        await self._renew_lease()
        await self._restore()

    async def _restore(self) -> None:
        """Write back the claims, types and subscriptions of this node's workers."""
        assert self._kv is not None
        for client_id, (conn, _) in list(self._claims.items()):
            if conn.closed:
                continue
            try:
                revision = await self._claim_key(client_id, takeover=True)
            except AlreadyExists:
                log(_logger, logging.WARNING, "cluster.claim_lost", client_id=client_id)
                conn.terminate(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"client {client_id!r} opened a data channel on another node meanwhile",
                )
                self._router.detach(conn)
                continue
            self._claims[client_id] = (conn, revision)
            for agent_type in list(self._owned_types.get(client_id, ())):
                with contextlib.suppress(AlreadyExists):
                    await self._add_member(conn, agent_type)
            for subscription in list(self._owned_subscriptions.get(client_id, {}).values()):
                with contextlib.suppress(AlreadyExists):
                    await self._write_subscription(client_id, subscription)

    # -- Directory -----------------------------------------------------------------------

    def _check_available(self) -> None:
        if not self.available:
            raise Unavailable("this host node has lost the cluster; retry on another node")

    async def claim(self, conn: DataConnection) -> None:
        """Claim ``conn.client_id`` cluster-wide (AWP-CLU-005)."""
        self._check_available()
        client_id = conn.client_id
        releasing = self._releasing.get(client_id)
        if releasing is not None:
            await asyncio.shield(releasing)
        if client_id in self._router.connections or client_id in self._claims:
            raise AlreadyExists(f"client {client_id!r} already has an open data channel")
        revision = await self._claim_key(client_id, takeover=False)
        self._claims[client_id] = (conn, revision)

    async def claim_control(self, conn: ControlConnection) -> None:
        """Claim the control channel of ``conn.client_id`` cluster-wide (AWP-CTL-007)."""
        self._check_available()
        client_id = conn.client_id
        if client_id in self._control_claims:
            raise AlreadyExists(f"client {client_id!r} already has an open control channel")
        self._control_claims[client_id] = conn
        try:
            await self._claim_key_once(
                _CONTROL_CLAIM + client_id, takeover=False, what="control channel"
            )
        except BaseException:
            if self._control_claims.get(client_id) is conn:
                del self._control_claims[client_id]
            raise

    def release_control(self, conn: ControlConnection) -> None:
        """Give up the control-channel claim of ``conn`` once it has ended."""
        client_id = conn.client_id
        if self._control_claims.get(client_id) is not conn:
            return
        del self._control_claims[client_id]
        key = _codec.key(_codec.KIND_CLIENT, _CONTROL_CLAIM + client_id)
        self._spawn(self._delete_if(key, self.member.encode()))

    async def _claim_key(self, client_id: str, *, takeover: bool) -> int:
        try:
            return await self._claim_key_once(client_id, takeover=takeover)
        except AlreadyExists:
            holder = self._mirror.clients.get(client_id)
            if holder is None:
                raise
            await self._settle(holder)
        return await self._claim_key_once(client_id, takeover=takeover)

    async def _claim_key_once(
        self, client_id: str, *, takeover: bool, what: str = "data channel"
    ) -> int:
        kv = self._kv
        assert kv is not None
        key = _codec.key(_codec.KIND_CLIENT, client_id)
        mine = self.member.encode()
        for _ in range(_CAS_ATTEMPTS):
            try:
                return await kv.create(key, mine)
            except nats.js.errors.KeyWrongLastSequenceError:
                pass
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            holder = (entry.value or b"").decode()
            if holder == self.member and takeover:
                return entry.revision or 0
            if holder != self.member and self._mirror.is_live(holder):
                raise AlreadyExists(
                    f"client {client_id.removeprefix(_CONTROL_CLAIM)!r} already has an open {what} "
                    "on another node"
                )
            # Held by a lost member whose state is not cleared yet, or left over by this
            # node's previous channel of the client: take it over.
            with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                return await kv.update(key, mine, last=entry.revision)
        raise Unavailable(f"could not claim client {client_id!r}: too much contention")

    def release(self, conn: DataConnection) -> None:
        """Give up the claim, types and subscriptions of a local worker that left."""
        client_id = conn.client_id
        claim = self._claims.get(client_id)
        if claim is None or claim[0] is not conn:
            return
        del self._claims[client_id]
        client = client_id.encode()
        for link in self._mirror.links.values():
            link.put(client, _codec.WORKER_LEFT)
        self._mirror.forget_local(client_id)
        types = self._owned_types.pop(client_id, set())
        subscriptions = self._owned_subscriptions.pop(client_id, {})
        task = self._loop.create_task(
            self._release(client_id, claim[1], types, list(subscriptions))
        )
        self._releasing[client_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._releasing.get(client_id) is finished:
                del self._releasing[client_id]

        task.add_done_callback(done)

    async def _release(
        self, client_id: str, revision: int, types: set[str], subscription_ids: list[str]
    ) -> None:
        kv = self._kv
        assert kv is not None
        try:
            for agent_type in types:
                await self._update_members(
                    agent_type,
                    lambda ms: [
                        m for m in ms if not (m.client_id == client_id and m.member == self.member)
                    ],
                )
            for sub_id in subscription_ids:
                key = _codec.key(_codec.KIND_SUBSCRIPTION, sub_id)
                with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                    entry = await kv.get(key)
                    decoded = decode_subscription(entry.value or b"")
                    if decoded is not None and decoded[:2] == (client_id, self.member):
                        await self._delete(key, entry.revision or 0)
            await self._delete_if(_codec.key(_codec.KIND_CLIENT, client_id), self.member.encode())
        except Exception as exc:  # the lease clears it if this node dies
            log(
                _logger,
                logging.WARNING,
                "cluster.release_failed",
                client_id=client_id,
                error=repr(exc),
            )
        del revision

    async def register(self, conn: DataConnection, agent_type: str) -> bool:
        """Add ``conn`` to ``agent_type`` cluster-wide, then wait for every member."""
        self._check_available()
        added, revision = await self._add_member(conn, agent_type)
        self._owned_types.setdefault(conn.client_id, set()).add(agent_type)
        await self._sync(revision)
        return added

    async def _add_member(self, conn: DataConnection, agent_type: str) -> tuple[bool, int]:
        client_id = conn.client_id
        mirror = self._mirror

        holders: list[str] = []

        def change(members: list[TypeMember]) -> list[TypeMember] | None:
            if any(m.client_id == client_id and m.member == self.member for m in members):
                return None
            others = [m for m in members if m.client_id != client_id and mirror.is_live(m.member)]
            shareable = self._config.shared_agent_types and conn.shares_types
            if others and not (shareable and all(m.shares for m in others)):
                holders[:] = [m.member for m in others]
                raise AlreadyExists(
                    f"agent type {agent_type!r} is already registered by {others[0].client_id!r}"
                )
            return [*others, TypeMember(client_id, self.member, conn.shares_types)]

        try:
            return await self._update_members(agent_type, change)
        except AlreadyExists:
            for member in set(holders):
                await self._settle(member)
        return await self._update_members(agent_type, change)

    async def _update_members(self, agent_type: str, change: Any) -> tuple[bool, int]:
        """Apply ``change`` (members -> new members, or None for no change) with CAS."""
        kv = self._kv
        assert kv is not None
        key = _codec.key(_codec.KIND_TYPE, agent_type)
        for _ in range(_CAS_ATTEMPTS):
            revision = 0
            members: list[TypeMember] = []
            try:
                entry = await kv.get(key)
                revision = entry.revision or 0
                members = decode_members(entry.value or b"")
            except nats.js.errors.KeyNotFoundError:
                pass
            new = change(members)
            if new is None or new == members:
                return False, revision
            try:
                if not new and revision:
                    return True, await self._delete(key, revision)
                if revision:
                    return True, await kv.update(key, encode_members(new), last=revision)
                return True, await kv.create(key, encode_members(new))
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
        raise Unavailable(f"could not register {agent_type!r}: too much contention")

    async def add_subscription(self, client_id: str, subscription: pb.Subscription) -> bool:
        """Add a subscription cluster-wide, then wait for every member (AWP-CLU-006)."""
        self._check_available()
        added, revision = await self._write_subscription(client_id, subscription)
        copy = pb.Subscription()
        copy.CopyFrom(subscription)
        self._owned_subscriptions.setdefault(client_id, {})[subscription.id] = copy
        await self._sync(revision)
        return added

    async def _write_subscription(
        self, client_id: str, subscription: pb.Subscription
    ) -> tuple[bool, int]:
        try:
            return await self._write_subscription_once(client_id, subscription)
        except AlreadyExists:
            holder = self._mirror.subscription_owners.get(subscription.id)
            if holder is None:
                raise
            await self._settle(holder[1])
        return await self._write_subscription_once(client_id, subscription)

    async def _write_subscription_once(
        self, client_id: str, subscription: pb.Subscription
    ) -> tuple[bool, int]:
        kv = self._kv
        assert kv is not None
        key = _codec.key(_codec.KIND_SUBSCRIPTION, subscription.id)
        value = encode_subscription(client_id, self.member, subscription)
        for _ in range(_CAS_ATTEMPTS):
            try:
                return True, await kv.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                pass
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            decoded = decode_subscription(entry.value or b"")
            revision = entry.revision or 0
            if decoded is not None:
                owner, member, existing = decoded
                if owner != client_id or existing != subscription:
                    raise AlreadyExists(f"subscription id {subscription.id!r} already exists")
                if member == self.member:
                    return False, revision
            # Ours from a lost member or this node's previous channel: take it over.
            with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                return True, await kv.update(key, value, last=revision)
        raise Unavailable(f"could not add subscription {subscription.id!r}: too much contention")

    async def remove_subscription(self, client_id: str, subscription_id: str) -> None:
        """Remove a subscription cluster-wide, then wait for every member (AWP-CLU-006)."""
        self._check_available()
        kv = self._kv
        assert kv is not None
        key = _codec.key(_codec.KIND_SUBSCRIPTION, subscription_id)
        for _ in range(_CAS_ATTEMPTS):
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                raise NotFound(f"subscription {subscription_id!r} does not exist") from None
            decoded = decode_subscription(entry.value or b"")
            if decoded is None or decoded[0] != client_id:
                raise PermissionDenied(
                    f"subscription {subscription_id!r} is owned by another client"
                )
            try:
                revision = await self._delete(key, entry.revision or 0)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            self._owned_subscriptions.get(client_id, {}).pop(subscription_id, None)
            await self._sync(revision)
            return
        raise Unavailable(f"could not remove {subscription_id!r}: too much contention")

    # -- helpers -------------------------------------------------------------------------

    async def _delete(self, key: str, last: int) -> int:
        """Delete ``key`` if its revision is still ``last``; return the deletion's revision."""
        assert self._nc is not None
        headers = {"KV-Operation": "DEL"}
        if last:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(last)
        try:
            ack = await self._nc.jetstream().publish(
                f"$KV.{self._bucket}.{key}", b"", headers=headers
            )
        except nats.js.errors.APIError as exc:
            if exc.err_code in (10071, 10164):
                raise nats.js.errors.KeyWrongLastSequenceError(description=exc.description) from exc
            raise
        return int(ack.seq)

    async def _delete_if(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it still holds ``value``."""
        assert self._kv is not None
        for _ in range(_CAS_ATTEMPTS):
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return
            if entry.value != value:
                return
            try:
                await self._delete(key, entry.revision or 0)
                return
            except nats.js.errors.KeyWrongLastSequenceError:
                continue

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
