"""Control requests for workers on other nodes (AWP-CLU-007).

A control request whose target worker is on another node goes to that node over the link, with
the requester's deadline; that node routes it and answers. This node keeps only what it needs to
answer the requester itself when the worker's node is lost or never answers (AWP-CLU-009).
"""

from __future__ import annotations

import asyncio

from google.protobuf.message import DecodeError

from agentworker.v1 import agentworker_pb2 as pb
from reference_host._connection import ControlConnection, DataConnection
from reference_host._control import ControlRouter

from . import _codec
from ._link import RemoteControl, RemoteWorker
from ._mirror import Mirror

# (requester client-id, rpc_id) of a relayed control request.
Key = tuple[str, str]


class ControlRelay:
    """Control requests this node sent to other members, until their answers pass through."""

    def __init__(
        self,
        mirror: Mirror,
        control: ControlRouter,
        loop: asyncio.AbstractEventLoop,
        *,
        grace_s: float,
    ) -> None:
        self._mirror = mirror
        self._control = control
        self._loop = loop
        # How long past the request's own deadline the requester waits for the worker's node.
        self._grace_s = grace_s
        # key -> (member, request, timer)
        self._pending: dict[Key, tuple[str, pb.OpenControlChannelRequest, asyncio.TimerHandle]] = {}

    def relay(
        self, conn: ControlConnection, frame: pb.OpenControlChannelRequest, worker: DataConnection
    ) -> bool:
        """Send a control request for a worker on another node to that node; return False when
        ``worker`` is local (or the request was relayed here: it is never relayed on)."""
        if not isinstance(worker, RemoteWorker) or isinstance(conn, RemoteControl):
            return False
        link = self._mirror.links.get(worker.member)
        if link is None:
            return False
        flag = b"\x01" if self._control.is_v1(conn.client_id) else b"\x00"
        timeout_ms = self._control.timeout_ms(conn)
        link.put(
            conn.client_id.encode(),
            _codec.CONTROL_REQUEST
            + flag
            + timeout_ms.to_bytes(8, "big")
            + frame.SerializeToString(),
        )
        # The worker's node answers (its deadline included); this node only makes sure the
        # requester hears something if that node is lost or never answers.
        key = (conn.client_id, frame.rpc_id)
        request = pb.OpenControlChannelRequest()
        request.CopyFrom(frame)
        handle = self._loop.call_later(
            timeout_ms / 1000.0 + self._grace_s,
            self.unanswered,
            key,
            pb.ERROR_CODE_DEADLINE_EXCEEDED,
            "the worker's node did not answer the control request in time",
        )
        self._pending[key] = (worker.member, request, handle)
        return True

    def unanswered(self, key: Key, code: int, text: str) -> None:
        """Answer the requester of relayed request ``key`` with an error, if still pending."""
        entry = self._pending.pop(key, None)
        if entry is not None:
            entry[2].cancel()
            self._control.answer_error(key[0], entry[1], code, text)

    def answered(self, client_id: str, frame: bytes) -> bool:
        """Forget the relayed request the encoded response ``frame`` answers; return False for
        an answer to a request that is no longer pending here (its requester was answered
        already)."""
        try:
            message = pb.OpenControlChannelResponse.FromString(frame)
        except DecodeError:
            return False
        if message.HasField("respond_to"):
            return True  # a request for the client's own agent, not an answer
        entry = self._pending.pop((client_id, message.rpc_id), None)
        if entry is None:
            return False
        entry[2].cancel()
        return True

    def member_lost(self, member: str) -> None:
        """Answer every request relayed to the lost ``member`` with TARGET_UNAVAILABLE."""
        for key, entry in list(self._pending.items()):
            if entry[0] == member:
                self.unanswered(
                    key,
                    pb.ERROR_CODE_TARGET_UNAVAILABLE,
                    f"cluster node {member!r} of the target worker was lost",
                )
