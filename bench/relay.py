"""The bench relay: the least a host can do and still route the load clients' traffic.

It serves the six methods under the legacy path ``/agents.AgentRpc/`` (and the canonical path,
without a welcome, so v1 clients see a legacy host) and forwards the bytes of each frame it
reads, unchanged: a worker's ``request``, ``response`` and ``cloud_event`` frames are encoded
exactly like the host's frames of the same case. It decodes nothing: a few lines below read the
handful of protobuf fields that routing needs (target type, request id, topic type) straight
from the bytes. It keeps only what routing needs: agent type to client, exact topic type to
agent types, and request id to the caller (so request ids must be unique across callers, as
with AutoGen's host). No validation, deadlines, id rewriting, counters, queue limits or logging.
It is the physical reference of the comparison: what gRPC and the event loop cost on their own.

The file depends on nothing but the standard library and grpcio, so the same relay runs in the
project's virtualenv and in interop/autogen/.venv (AutoGen's older grpcio):

    python bench/relay.py --address 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

SERVICES = ("agents.AgentRpc", "agentworker.v1.AgentRpcService")

# Field numbers (agentworker.proto / AutoGen's agent_worker.proto, identical on the wire).
_FRAME_REQUEST, _FRAME_RESPONSE, _FRAME_EVENT = 1, 2, 3
_REQUEST_ID, _REQUEST_TARGET, _AGENT_ID_TYPE = 1, 3, 1
_RESPONSE_ID = 1
_EVENT_TYPE = 4
_SUBSCRIPTION_ID, _SUBSCRIPTION_TYPE = 1, 2
_TYPE_SUB_TOPIC, _TYPE_SUB_AGENT = 1, 2

Span = tuple[int, int]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _find(data: bytes, span: Span, wanted: int) -> Span | None:
    """Return the span of the first length-delimited field ``wanted`` within ``span``."""
    pos, end = span
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 2:
            size, pos = _varint(data, pos)
            if number == wanted:
                return pos, pos + size
            pos += size
        elif wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            return None
    return None


def _bytes_at(data: bytes, span: Span | None, *path: int) -> bytes:
    """Follow the field numbers ``path`` from ``span``; return the last field's bytes or b""."""
    for number in path:
        if span is None:
            return b""
        span = _find(data, span, number)
    return b"" if span is None else data[span[0] : span[1]]


def _frame_case(data: bytes) -> tuple[int, Span]:
    """Return the data frame's oneof case (field number) and its message's span."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        if key & 7 != 2:
            return 0, (0, 0)
        size, pos = _varint(data, pos)
        number = key >> 3
        if number in (_FRAME_REQUEST, _FRAME_RESPONSE, _FRAME_EVENT):
            return number, (pos, pos + size)
        pos += size
    return 0, (0, 0)


class _Connection:
    """A data channel's outbound queue and its single writer."""

    __slots__ = ("client_id", "queue", "wakeup")

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.queue: collections.deque[bytes] = collections.deque()
        self.wakeup: asyncio.Future[None] | None = None

    def push(self, data: bytes) -> None:
        self.queue.append(data)
        wakeup = self.wakeup
        if wakeup is not None:
            self.wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def write_loop(self, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        loop = asyncio.get_running_loop()
        queue = self.queue
        while True:
            while queue:
                await context.write(queue.popleft())
            wakeup: asyncio.Future[None] = loop.create_future()
            self.wakeup = wakeup
            await wakeup


def _client_id(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "client-id" and isinstance(value, str) and value:
            return value
    return None


class Relay:
    """Routing tables and the gRPC handlers (all messages stay bytes)."""

    def __init__(self) -> None:
        self.connections: dict[str, _Connection] = {}
        self.types: dict[bytes, str] = {}
        # topic type -> {subscription id: agent type}
        self.topics: dict[bytes, dict[bytes, bytes]] = {}
        # subscription id -> (owner client id, topic type)
        self.subscriptions: dict[bytes, tuple[str, bytes]] = {}
        self.pending: dict[bytes, _Connection] = {}

    async def open_channel(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> None:
        client_id = _client_id(context)
        if client_id is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "client-id metadata not found")
        conn = _Connection(client_id)
        self.connections[client_id] = conn
        writer = asyncio.create_task(conn.write_loop(context))
        connections, types, topics, pending = (
            self.connections,
            self.types,
            self.topics,
            self.pending,
        )
        try:
            async for data in requests:
                case, body = _frame_case(data)
                if case == _FRAME_REQUEST:
                    target_type = _bytes_at(data, body, _REQUEST_TARGET, _AGENT_ID_TYPE)
                    target_client = types.get(target_type)
                    target = connections.get(target_client) if target_client else None
                    if target is not None:
                        pending[_bytes_at(data, body, _REQUEST_ID)] = conn
                        target.push(data)
                elif case == _FRAME_RESPONSE:
                    caller = pending.pop(_bytes_at(data, body, _RESPONSE_ID), None)
                    if caller is not None:
                        caller.push(data)
                elif case == _FRAME_EVENT:
                    subscribed = topics.get(_bytes_at(data, body, _EVENT_TYPE))
                    if subscribed:
                        seen: set[str] = set()
                        for agent_type in subscribed.values():
                            owner = types.get(agent_type)
                            if owner is None or owner in seen:
                                continue
                            seen.add(owner)
                            receiver = connections.get(owner)
                            if receiver is not None:
                                receiver.push(data)
        except (grpc.RpcError, grpc.aio.BaseError, asyncio.CancelledError):
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            self._forget(client_id, conn)

    def _forget(self, client_id: str, conn: _Connection) -> None:
        if self.connections.get(client_id) is conn:
            del self.connections[client_id]
        for agent_type in [t for t, owner in self.types.items() if owner == client_id]:
            del self.types[agent_type]
        for sub_id in [s for s, (owner, _) in self.subscriptions.items() if owner == client_id]:
            _, topic = self.subscriptions.pop(sub_id)
            entries = self.topics.get(topic)
            if entries is not None:
                entries.pop(sub_id, None)
                if not entries:
                    del self.topics[topic]
        for request_id in [r for r, caller in self.pending.items() if caller is conn]:
            del self.pending[request_id]

    async def register_agent(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        client_id = _client_id(context)
        if client_id is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "client-id metadata not found")
        # RegisterAgentRequest.type = 1
        self.types[_bytes_at(request, (0, len(request)), 1)] = client_id
        return b""

    async def add_subscription(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        client_id = _client_id(context)
        if client_id is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "client-id metadata not found")
        # AddSubscriptionRequest.subscription = 1 { id = 1; type_subscription = 2 {...} }
        subscription = _find(request, (0, len(request)), 1)
        exact = _find(request, subscription, _SUBSCRIPTION_TYPE) if subscription else None
        if subscription is None or exact is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the relay has exact topics only")
        sub_id = _bytes_at(request, subscription, _SUBSCRIPTION_ID)
        topic = _bytes_at(request, exact, _TYPE_SUB_TOPIC)
        self.topics.setdefault(topic, {})[sub_id] = _bytes_at(request, exact, _TYPE_SUB_AGENT)
        self.subscriptions[sub_id] = (client_id, topic)
        return b""

    async def remove_subscription(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        # RemoveSubscriptionRequest.id = 1
        sub_id = _bytes_at(request, (0, len(request)), 1)
        entry = self.subscriptions.pop(sub_id, None)
        if entry is not None:
            self.topics.get(entry[1], {}).pop(sub_id, None)
        return b""

    async def get_subscriptions(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return b""

    async def open_control_channel(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> None:
        # Accepted and ignored: the load clients do not use the control channel.
        async for _ in requests:
            pass

    def handlers(self) -> list[grpc.GenericRpcHandler[Any, Any]]:
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "OpenChannel": grpc.stream_stream_rpc_method_handler(self.open_channel),
            "OpenControlChannel": grpc.stream_stream_rpc_method_handler(self.open_control_channel),
            "RegisterAgent": grpc.unary_unary_rpc_method_handler(self.register_agent),
            "AddSubscription": grpc.unary_unary_rpc_method_handler(self.add_subscription),
            "RemoveSubscription": grpc.unary_unary_rpc_method_handler(self.remove_subscription),
            "GetSubscriptions": grpc.unary_unary_rpc_method_handler(self.get_subscriptions),
        }
        return [grpc.method_handlers_generic_handler(name, methods) for name in SERVICES]


async def serve(address: str) -> None:
    """Serve on ``address`` until SIGTERM or SIGINT."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers(Relay().handlers())
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot bind {address}")
    await server.start()
    print(f"relay listening on {address} (grpcio {grpc.__version__})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay from the command line."""
    parser = argparse.ArgumentParser(prog="bench/relay.py", description=__doc__)
    parser.add_argument("--address", default="127.0.0.1:50099", help="HOST:PORT to serve on")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.address))
    except OSError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
