"""Messages from other nodes: the frames they relay here, and the acknowledgements of the
links' flow control (see ``_link``).

Each message's entries go to the router as they came: events to the named local workers, calls
forwarded under the caller's node's host id, answers to the calls this node relayed, and control
requests and answers. The node acknowledges what it processed in its own messages to the
sender, or alone when it has none to send (``_ACK_EVERY_BYTES``, ``_ACK_IDLE_BYTES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Final

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import _wire
from reference_host._control import ControlRouter
from reference_host._logging import log
from reference_host._metrics import Metrics
from reference_host._router import Router

from . import _codec
from ._control_relay import ControlRelay
from ._link import RemoteControl, RemoteWorker
from ._mirror import Mirror

_logger = logging.getLogger("reference_host.cluster")

# A receiver acknowledges in every message it sends to the sender; alone, at least every this
# many bytes, and when it is idle with at least _ACK_IDLE_BYTES unacknowledged and nothing to
# send there (far below the links' window, so a sender never waits for it).
_ACK_EVERY_BYTES: Final = 1024 * 1024
_ACK_IDLE_BYTES: Final = 64 * 1024
# First bytes of the frames in messages between nodes (see _codec).
_EVENT: Final = _wire.TAG_CLOUD_EVENT[0]
_REQUEST: Final = _wire.TAG_REQUEST[0]
_RESPONSE: Final = _wire.TAG_RESPONSE[0]
_WORKER_LEFT: Final = _codec.WORKER_LEFT[0]
_CONTROL_REQUEST: Final = _codec.CONTROL_REQUEST[0]
_CONTROL_TO_CLIENT: Final = _codec.CONTROL_TO_CLIENT[0]
_CALL: Final = _codec.CALL[0]


class Inbound:
    """What this node receives from the other members (subject ``P.n.<member>`` and
    ``P.a.<member>``, see ``_node``)."""

    def __init__(
        self,
        member: str,
        prefix: str,
        mirror: Mirror,
        router: Router,
        control: ControlRouter,
        control_relay: ControlRelay,
        metrics: Metrics,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._member = member
        self._prefix = prefix
        self._mirror = mirror
        self._router = router
        self._control = control
        self._control_relay = control_relay
        self._metrics = metrics
        self._loop = loop
        # Set once the node is connected: the connection acknowledgements go out on, and the
        # subscription frames arrive on (its backlog tells whether this node is idle).
        self.nc: NatsClient | None = None
        self.subscription: Any = None
        # Per sender: the highest message number processed, and the bytes since the last ack.
        self._processed: dict[str, int] = {}
        self._unacked_bytes: dict[str, int] = {}

    async def on_ack(self, msg: Msg) -> None:
        """A member acknowledges this node's messages up to a number (``<member> <number>``)."""
        sender, _, seq = msg.data.decode(errors="replace").partition(" ")
        link = self._mirror.links.get(sender)
        if link is not None and seq.isdigit():
            link.ack(int(seq))

    def carried_ack(self, peer: str) -> int:
        """Return the number to acknowledge to ``peer`` in a message going there now."""
        self._unacked_bytes[peer] = 0
        return self._processed.get(peer, 0)

    async def _acknowledge(self, sender: str, seq: int, size: int) -> None:
        self._processed[sender] = max(seq, self._processed.get(sender, 0))
        pending = self._unacked_bytes.get(sender, 0) + size
        self._unacked_bytes[sender] = pending
        idle = self.subscription is None or self.subscription.pending_msgs == 0
        if pending < _ACK_EVERY_BYTES and not (idle and pending >= _ACK_IDLE_BYTES):
            return
        # When idle, everything received is processed: acknowledge every sender still owed,
        # except those a message queued for them will acknowledge anyway.
        links = self._mirror.links
        owed = (
            [
                s
                for s, b in self._unacked_bytes.items()
                if b >= _ACK_IDLE_BYTES and not ((link := links.get(s)) and link.busy)
            ]
            if idle
            else []
        )
        if sender not in owed and pending >= _ACK_EVERY_BYTES:
            owed.append(sender)
        assert self.nc is not None
        for peer in owed:
            self._unacked_bytes[peer] = 0
            with contextlib.suppress(Exception):
                await self.nc.publish(
                    f"{self._prefix}.a.{peer}",
                    f"{self._member} {self._processed.get(peer, 0)}".encode(),
                )

    async def on_frames(self, msg: Msg) -> None:
        """Relay the entries of a member's message, then acknowledge it when due."""
        # The moment this node read the message: deadlines of the calls in it count from here.
        read_at = self._loop.time()
        try:
            sender, seq, ack, entries = _codec.unpack(msg.data)
        except ValueError as exc:
            self._metrics.frames_invalid += 1
            log(_logger, logging.ERROR, "cluster.bad_message", error=repr(exc))
            return
        if ack:
            link = self._mirror.links.get(sender)
            if link is not None:
                link.ack(ack)
        await self._relay(sender, entries, read_at)
        await self._acknowledge(sender, seq, len(msg.data))

    async def _relay(
        self, sender: str, entries: Iterator[tuple[list[str], bytes]], read_at: float
    ) -> None:
        router = self._router
        mirror = self._mirror
        relay_event = router.relay_event
        # What the fast paths looked up for the clients of the entry before: a burst of
        # frames for one worker names it once (see _codec), and is looked up once. Anything
        # that waits or takes the slow path may change the stand-ins, and forgets it.
        last: list[str] | None = None
        proxy: RemoteWorker | None = None
        caller: RemoteWorker | None = None
        try:
            for clients, frame in entries:
                tag = frame[0]
                if tag == _EVENT:
                    # One copy for every named worker here (AWP-CLU-025).
                    for client_id in clients:
                        blocked = relay_event(client_id, frame)
                        if blocked is not None:
                            last = None
                            await blocked
                    continue
                if clients is not last:
                    last = clients
                    proxy = caller = None
                if tag == _RESPONSE and len(clients) == 1:
                    # The answer to a call this node relayed: only the host id is read.
                    if proxy is None:
                        proxy = mirror.proxies.get(clients[0])
                    found = _codec.response_id(frame)
                    if proxy is not None and proxy.member == sender and found is not None:
                        blocked = router.relay_answer(proxy, found[0], found[1], frame)
                        if blocked is not None:
                            last = None
                            await blocked
                        continue
                elif tag == _CALL and len(clients) == 1:
                    # A call to a worker here: forwarded as it came, under its host id.
                    host_id, timeout_ms, request = _codec.parse_call(frame)
                    if caller is None or caller.closed:
                        caller = mirror.caller(sender, clients[0])
                    if caller is not None and router.relay_call(
                        caller, clients[0], host_id, timeout_ms, request, read_at
                    ):
                        continue
                last = None
                for client_id in clients:
                    await self._relay_one(sender, client_id, tag, frame, read_at)
        except Exception as exc:  # a bad message must not stop the subscription
            self._metrics.frames_invalid += 1
            log(_logger, logging.ERROR, "cluster.bad_message", error=repr(exc))

    async def _relay_one(
        self, sender: str, client_id: str, tag: int, frame: bytes, read_at: float
    ) -> None:
        router = self._router
        mirror = self._mirror
        if tag == _WORKER_LEFT:
            mirror.departed(sender, client_id)
        elif tag == _CONTROL_REQUEST:
            control_request = pb.OpenControlChannelRequest.FromString(frame[10:])
            stand_in = mirror.control_stand_in(sender, client_id, frame[1:2] == b"\x01")
            if stand_in is None:
                self._metrics.control_dropped += 1
                return
            # The requester's deadline, stated on its own node (AWP-CTL-011).
            deadline_ms = int.from_bytes(frame[2:10], "big")
            self._control.handle(stand_in, control_request, deadline_ms)
        elif tag == _CONTROL_TO_CLIENT:
            answered = self._control_relay.answered(client_id, frame[1:])
            local = self._control.connections.get(client_id)
            if not answered or local is None or local.closed or isinstance(local, RemoteControl):
                # Answered here already (AWP-CTL-013), or the requester has gone.
                self._metrics.control_dropped += 1
                return
            local.outbound.offer(frame[1:])
        elif tag == _CALL:
            host_id, timeout_ms, request_frame = _codec.parse_call(frame)
            caller = mirror.caller(sender, client_id)
            if caller is None:
                self._metrics.frames_invalid += 1
                return
            if not router.relay_call(
                caller, client_id, host_id, timeout_ms, request_frame, read_at
            ):
                request = pb.RpcRequest.FromString(_wire.frame_payload(request_frame))
                await router.relay_request(caller, request, client_id)
        elif tag == _REQUEST:
            request = pb.RpcRequest.FromString(_wire.frame_payload(frame))
            caller = mirror.caller(sender, client_id)
            if caller is None:
                self._metrics.frames_invalid += 1
                return
            await router.relay_request(caller, request, client_id)
        elif tag == _RESPONSE:
            proxy = mirror.proxies.get(client_id)
            if proxy is None or proxy.member != sender:
                # The worker's member was lost meanwhile; its calls already ended.
                self._metrics.rpc_late_responses += 1
                return
            found = _codec.response_id(frame)
            if found is not None:
                blocked = router.relay_answer(proxy, found[0], found[1], frame)
                if blocked is not None:
                    await blocked
                return
            response = pb.RpcResponse.FromString(_wire.frame_payload(frame))
            await router.relay_response(proxy, response)
        else:
            self._metrics.frames_invalid += 1
