"""A scriptable stand-in host that records what a worker sends and answers nothing unasked.

It lets tests check the worker's wire behaviour independently of the reference host: the
handshake metadata, frames as written, and what happens when a host never answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio

from agentworker.v1 import agentworker_pb2

SERVICE = "agentworker.v1.AgentRpcService"


class FakeHost:
    """Serves OpenChannel and the unary calls; `welcome=None` plays a legacy host."""

    def __init__(self, welcome: agentworker_pb2.ChannelWelcome | None) -> None:
        self.welcome = welcome
        self.channel_metadata: dict[str, Any] = {}
        self.unary_metadata: list[dict[str, Any]] = []
        self.frames: list[agentworker_pb2.OpenChannelRequest] = []
        self.registered: list[str] = []
        self.subscriptions: list[agentworker_pb2.Subscription] = []
        self.outbound: asyncio.Queue[agentworker_pb2.OpenChannelResponse | None] = asyncio.Queue()
        self._changed = asyncio.Condition()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server()
        request_type = agentworker_pb2.OpenChannelRequest
        handlers = {
            "OpenChannel": grpc.stream_stream_rpc_method_handler(
                self._open_channel,
                request_deserializer=request_type.FromString,
                response_serializer=agentworker_pb2.OpenChannelResponse.SerializeToString,
            ),
            "RegisterAgent": grpc.unary_unary_rpc_method_handler(
                self._register,
                request_deserializer=agentworker_pb2.RegisterAgentRequest.FromString,
                response_serializer=agentworker_pb2.RegisterAgentResponse.SerializeToString,
            ),
            "AddSubscription": grpc.unary_unary_rpc_method_handler(
                self._add_subscription,
                request_deserializer=agentworker_pb2.AddSubscriptionRequest.FromString,
                response_serializer=agentworker_pb2.AddSubscriptionResponse.SerializeToString,
            ),
        }
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        await self.outbound.put(None)
        if self._server is not None:
            await self._server.stop(grace=None)

    async def _touch(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_frames(self, count: int, within: float = 10.0) -> None:
        await self.wait_until(lambda: len(self.frames) >= count, within)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    def unbatched(self) -> list[agentworker_pb2.OpenChannelRequest]:
        """Every frame received, batches opened, in order."""
        out: list[agentworker_pb2.OpenChannelRequest] = []
        for frame in self.frames:
            out.extend(frame.batch.messages if frame.HasField("batch") else [frame])
        return out

    async def _open_channel(
        self, requests: AsyncIterator[agentworker_pb2.OpenChannelRequest], context: Any
    ) -> AsyncIterator[agentworker_pb2.OpenChannelResponse]:
        self.channel_metadata = dict(context.invocation_metadata())
        if self.welcome is not None:
            welcome = self.welcome.SerializeToString()
            await context.send_initial_metadata([("agentworker-welcome-bin", welcome)])
        else:
            await context.send_initial_metadata([])

        async def read() -> None:
            async for frame in requests:
                self.frames.append(frame)
                await self._touch()
            await self.outbound.put(None)  # the worker half-closed: end the stream too

        reader = asyncio.ensure_future(read())
        try:
            while (frame := await self.outbound.get()) is not None:
                yield frame
        finally:
            reader.cancel()

    async def _register(
        self, request: agentworker_pb2.RegisterAgentRequest, context: Any
    ) -> agentworker_pb2.RegisterAgentResponse:
        self.unary_metadata.append(dict(context.invocation_metadata()))
        self.registered.append(request.type)
        return agentworker_pb2.RegisterAgentResponse()

    async def _add_subscription(
        self, request: agentworker_pb2.AddSubscriptionRequest, context: Any
    ) -> agentworker_pb2.AddSubscriptionResponse:
        self.unary_metadata.append(dict(context.invocation_metadata()))
        self.subscriptions.append(request.subscription)
        return agentworker_pb2.AddSubscriptionResponse()
