"""The bench relay: the least a host can do and still route the load clients' traffic.

It serves the six methods under the legacy path ``/agents.AgentRpc/`` (and the canonical path,
without a welcome, so v1 clients see a legacy host), and forwards the bytes of each frame it
reads, unchanged: a worker's ``request``, ``response`` and ``cloud_event`` frames are encoded
exactly like the host's frames of the same case. It parses a frame once to find where it goes
and keeps only what routing needs: agent type to client, exact topic type to agent types, and
request id to the caller (so request ids must be unique across callers, as with AutoGen's
host). No validation, deadlines, id rewriting, counters, queue limits or logging. It is the
physical reference of the comparison: what gRPC and the event loop cost on their own.

    python -m bench.relay --address 127.0.0.1:PORT
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

from agentworker.v1 import agentworker_pb2 as pb

SERVICES = ("agents.AgentRpc", "agentworker.v1.AgentRpcService")
_parse = pb.OpenChannelRequest.FromString


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
    """Routing tables and the gRPC handlers."""

    def __init__(self) -> None:
        self.connections: dict[str, _Connection] = {}
        self.types: dict[str, str] = {}
        # topic type -> {subscription id: agent type}
        self.topics: dict[str, dict[str, str]] = {}
        # subscription id -> (owner client id, topic type)
        self.subscriptions: dict[str, tuple[str, str]] = {}
        self.pending: dict[str, _Connection] = {}

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
                frame = _parse(data)
                case = frame.WhichOneof("message")
                if case == "request":
                    request = frame.request
                    target_client = types.get(request.target.type)
                    target = connections.get(target_client) if target_client else None
                    if target is not None:
                        pending[request.request_id] = conn
                        target.push(data)
                elif case == "response":
                    caller = pending.pop(frame.response.request_id, None)
                    if caller is not None:
                        caller.push(data)
                elif case == "cloud_event":
                    subscribed = topics.get(frame.cloud_event.type)
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
        self, request: pb.RegisterAgentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegisterAgentResponse:
        client_id = _client_id(context)
        if client_id is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "client-id metadata not found")
        self.types[request.type] = client_id
        return pb.RegisterAgentResponse()

    async def add_subscription(
        self, request: pb.AddSubscriptionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AddSubscriptionResponse:
        client_id = _client_id(context)
        if client_id is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "client-id metadata not found")
        sub = request.subscription
        if sub.WhichOneof("subscription") != "type_subscription":
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the relay has exact topics only")
        topic = sub.type_subscription.topic_type
        self.topics.setdefault(topic, {})[sub.id] = sub.type_subscription.agent_type
        self.subscriptions[sub.id] = (client_id, topic)
        return pb.AddSubscriptionResponse()

    async def remove_subscription(
        self, request: pb.RemoveSubscriptionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RemoveSubscriptionResponse:
        entry = self.subscriptions.pop(request.id, None)
        if entry is not None:
            self.topics.get(entry[1], {}).pop(request.id, None)
        return pb.RemoveSubscriptionResponse()

    async def get_subscriptions(
        self, request: pb.GetSubscriptionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetSubscriptionsResponse:
        return pb.GetSubscriptionsResponse()

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
            "RegisterAgent": grpc.unary_unary_rpc_method_handler(
                self.register_agent,
                request_deserializer=pb.RegisterAgentRequest.FromString,
                response_serializer=pb.RegisterAgentResponse.SerializeToString,
            ),
            "AddSubscription": grpc.unary_unary_rpc_method_handler(
                self.add_subscription,
                request_deserializer=pb.AddSubscriptionRequest.FromString,
                response_serializer=pb.AddSubscriptionResponse.SerializeToString,
            ),
            "RemoveSubscription": grpc.unary_unary_rpc_method_handler(
                self.remove_subscription,
                request_deserializer=pb.RemoveSubscriptionRequest.FromString,
                response_serializer=pb.RemoveSubscriptionResponse.SerializeToString,
            ),
            "GetSubscriptions": grpc.unary_unary_rpc_method_handler(
                self.get_subscriptions,
                request_deserializer=pb.GetSubscriptionsRequest.FromString,
                response_serializer=pb.GetSubscriptionsResponse.SerializeToString,
            ),
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
    print(f"relay listening on {address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay from the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
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
