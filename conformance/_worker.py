"""A raw worker: the harness's own client of the host, frame by frame, with a wire trace."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import CaseFailure
from conformance._predicates import case_is, is_event, response_to
from conformance._stream import FrameStream
from conformance._trace import Trace
from conformance._wire import (
    AUTHORIZATION_KEY,
    CLIENT_ID_KEY,
    HELLO_KEY,
    WELCOME_KEY,
    describe,
    encode,
    method_path,
)

__all__ = ["RawWorker", "StatusResult"]

ResponseT = TypeVar("ResponseT", bound=Message)
_MAX_BYTES = 32 * 1024 * 1024

StatusResult = tuple[grpc.StatusCode, str]


async def _connected(call: Any) -> None:
    """Wait until the call's metadata is sent; a call that already failed is left to its
    stream's reader, which records the status."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call.wait_for_connection()


def _unpack_batch(frame: pb.OpenChannelResponse) -> list[pb.OpenChannelResponse]:
    if frame.WhichOneof("message") == "batch":
        return list(frame.batch.messages)
    return [frame]


class RawWorker:
    """One worker connection driven by a case: a gRPC channel, a data channel, unary calls.

    ``client_id`` None sends no ``client-id`` metadata; ``hello`` None sends no handshake (a
    legacy worker), bytes send those bytes as the hello. ``credentials`` make the channel TLS;
    ``token`` adds `authorization: Bearer <token>` to every call."""

    def __init__(
        self,
        address: str,
        *,
        label: str,
        client_id: str | None,
        hello: pb.ChannelHello | bytes | None,
        legacy_path: bool,
        trace: Trace,
        scale: float,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.address = address
        self.credentials = credentials
        self.token = token
        self.label = label
        self.client_id = client_id
        self.hello = hello
        self.legacy_path = legacy_path
        self.trace = trace
        self.scale = scale
        self.welcome: pb.ChannelWelcome | None = None
        self.welcome_metadata = False
        # The largest message this worker's channel accepts; a case lowers it (before the
        # first call) to act as a worker that accepts only what its hello announced.
        self.receive_limit = _MAX_BYTES
        self._channel: grpc.aio.Channel | None = None
        self._data: FrameStream[pb.OpenChannelResponse] | None = None
        self.control: FrameStream[pb.OpenControlChannelResponse] | None = None

    # -- plumbing -------------------------------------------------------------------------

    @property
    def channel(self) -> grpc.aio.Channel:
        """Return the gRPC channel, creating it on first use."""
        if self._channel is None:
            options = (
                ("grpc.max_send_message_length", _MAX_BYTES),
                ("grpc.max_receive_message_length", self.receive_limit),
            )
            if self.credentials is None:
                self._channel = grpc.aio.insecure_channel(self.address, options=options)
            else:
                self._channel = grpc.aio.secure_channel(
                    self.address, self.credentials, options=options
                )
        return self._channel

    @property
    def data_or_none(self) -> FrameStream[pb.OpenChannelResponse] | None:
        """Return the data channel, or None if it was never opened."""
        return self._data

    @property
    def data(self) -> FrameStream[pb.OpenChannelResponse]:
        """Return the open data channel."""
        if self._data is None:
            raise CaseFailure(f"{self.label}: data channel not open")
        return self._data

    def metadata(self, client_id: str | None = None) -> list[tuple[str, str | bytes]]:
        """Return call metadata carrying the client-id (``client_id`` overrides it) and the
        bearer token, if any."""
        cid = self.client_id if client_id is None else client_id
        md: list[tuple[str, str | bytes]] = [] if cid is None else [(CLIENT_ID_KEY, cid)]
        if self.token is not None:
            md.append((AUTHORIZATION_KEY, f"Bearer {self.token}"))
        return md

    def _path(self, method: str) -> str:
        return method_path(method, legacy=self.legacy_path)

    # -- data channel ---------------------------------------------------------------------

    async def open(self, *, welcome_timeout: float = 5.0) -> None:
        """Open the data channel; with a hello, wait for the welcome (None if none came)."""
        md = self.metadata()
        if self.hello is not None:
            md.append((HELLO_KEY, encode(self.hello)))
        method: Any = self.channel.stream_stream(  # called without a request iterator
            self._path("OpenChannel"),
            request_serializer=encode,
            response_deserializer=pb.OpenChannelResponse.FromString,
        )
        call = method(metadata=md)
        hello_text = "" if self.hello is None else f" hello={describe(self.hello)}"
        token_text = "" if self.token is None else f" token={self.token!r}"
        self.trace.sent(
            self.label, f"OpenChannel client-id={self.client_id!r}{token_text}{hello_text}"
        )
        self._data = FrameStream(
            call, label=self.label, trace=self.trace, scale=self.scale, unpack=_unpack_batch
        )
        if self.hello is None:
            await _connected(call)
            return
        try:
            initial = await asyncio.wait_for(call.initial_metadata(), welcome_timeout * self.scale)
        except TimeoutError:
            self.trace.note(self.label, "no initial metadata")
            return
        except grpc.aio.AioRpcError:
            return  # the call failed; the stream's reader reports the status
        for key, value in initial or ():
            if key == WELCOME_KEY and isinstance(value, bytes):
                self.welcome_metadata = True
                try:
                    self.welcome = pb.ChannelWelcome.FromString(value)
                except DecodeError:
                    self.trace.note(self.label, "welcome does not decode")
                    return
                self.trace.received(self.label, f"welcome {describe(self.welcome)}")

    async def metadata_keys(self, within: float = 2.0) -> list[str]:
        """Return the keys of the data channel's initial response metadata."""
        try:
            initial = await asyncio.wait_for(self.data.call.initial_metadata(), within * self.scale)
        except (TimeoutError, grpc.aio.AioRpcError):
            return []
        return [key for key, _ in initial or ()]

    async def send(self, frame: pb.OpenChannelRequest | bytes) -> None:
        """Write one data-channel frame."""
        await self.data.write(frame)

    async def publish(self, event: ce.CloudEvent) -> None:
        """Publish a CloudEvent."""
        await self.send(pb.OpenChannelRequest(cloud_event=event))

    async def request(self, request: pb.RpcRequest) -> None:
        """Send an RPC request frame."""
        await self.send(pb.OpenChannelRequest(request=request))

    async def respond(self, response: pb.RpcResponse) -> None:
        """Send an RPC response frame."""
        await self.send(pb.OpenChannelRequest(response=response))

    async def expect_response(self, request_id: str, within: float = 5.0) -> pb.RpcResponse:
        """Wait for the response to ``request_id``."""
        frame = await self.data.expect(
            f"response to request {request_id!r}", response_to(request_id), within
        )
        return frame.response

    async def expect_request(self, what: str = "request", within: float = 5.0) -> pb.RpcRequest:
        """Wait for a request delivered to this worker."""
        frame = await self.data.expect(what, case_is("request"), within)
        return frame.request

    async def expect_event(self, what: str = "event", within: float = 5.0) -> ce.CloudEvent:
        """Wait for an event delivered to this worker."""
        frame = await self.data.expect(what, is_event, within)
        return frame.cloud_event

    async def expect_notice(self, what: str = "notice", within: float = 5.0) -> pb.Notice:
        """Wait for a Notice frame."""
        frame = await self.data.expect(what, case_is("notice"), within)
        return frame.notice

    async def disconnect(self) -> None:
        """End the data channel abruptly (cancel it)."""
        if self._data is not None:
            self.trace.note(self.label, "data channel cancelled by the harness")
            await self._data.close()

    async def close(self) -> None:
        """Close every stream and the gRPC channel."""
        if self._data is not None and not self._data.ended:
            await self._data.close()
        if self.control is not None and not self.control.ended:
            await self.control.close()
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    # -- control channel ------------------------------------------------------------------

    async def open_control(
        self, *, extra_metadata: Sequence[tuple[str, str]] = ()
    ) -> FrameStream[pb.OpenControlChannelResponse]:
        """Open the control channel, adding ``extra_metadata`` to the call's metadata."""
        method: Any = self.channel.stream_stream(  # called without a request iterator
            self._path("OpenControlChannel"),
            request_serializer=encode,
            response_deserializer=pb.OpenControlChannelResponse.FromString,
        )
        call = method(metadata=[*self.metadata(), *extra_metadata])
        self.trace.sent(self.label, "OpenControlChannel")
        self.control = FrameStream(
            call, label=self.label + "/ctl", trace=self.trace, scale=self.scale
        )
        await _connected(call)
        return self.control

    # -- unary calls ----------------------------------------------------------------------

    async def unary(
        self,
        method: str,
        request: Message | bytes,
        response_type: type[ResponseT],
        *,
        metadata: Sequence[tuple[str, str]] | None = None,
        within: float = 5.0,
        path: str | None = None,
    ) -> tuple[grpc.StatusCode, str, ResponseT | None]:
        """Call a unary method (of the agent service, or at ``path``); return its status
        code, details and response."""
        callable_ = self.channel.unary_unary(
            path if path is not None else self._path(method),
            request_serializer=encode,
            response_deserializer=response_type.FromString,
        )
        md = self.metadata() if metadata is None else list(metadata)
        method = method or (path or "").rsplit("/", 1)[-1]
        self.trace.sent(self.label, f"{method} {describe(request)}")
        try:
            response: ResponseT = await callable_(request, metadata=md, timeout=within * self.scale)
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            self.trace.received(self.label, f"{method} status {exc.code().name} {details!r}")
            return exc.code(), details, None
        self.trace.received(self.label, f"{method} OK {describe(response)}")
        return grpc.StatusCode.OK, "", response

    async def register_status(self, agent_type: str) -> StatusResult:
        """Call RegisterAgent; return its status code and details."""
        code, details, _ = await self.unary(
            "RegisterAgent", pb.RegisterAgentRequest(type=agent_type), pb.RegisterAgentResponse
        )
        return code, details

    async def register(self, agent_type: str) -> None:
        """Register an agent type; fail the case on an error status."""
        await self._ok("RegisterAgent", await self.register_status(agent_type))

    async def add_subscription_status(self, subscription: pb.Subscription) -> StatusResult:
        """Call AddSubscription; return its status code and details."""
        code, details, _ = await self.unary(
            "AddSubscription",
            pb.AddSubscriptionRequest(subscription=subscription),
            pb.AddSubscriptionResponse,
        )
        return code, details

    async def subscribe(self, subscription: pb.Subscription) -> None:
        """Add a subscription; fail the case on an error status."""
        await self._ok("AddSubscription", await self.add_subscription_status(subscription))

    async def remove_subscription_status(self, subscription_id: str) -> StatusResult:
        """Call RemoveSubscription; return its status code and details."""
        code, details, _ = await self.unary(
            "RemoveSubscription",
            pb.RemoveSubscriptionRequest(id=subscription_id),
            pb.RemoveSubscriptionResponse,
        )
        return code, details

    async def subscriptions(self) -> list[pb.Subscription]:
        """Return GetSubscriptions' list; fail the case on an error status."""
        code, details, response = await self.unary(
            "GetSubscriptions", pb.GetSubscriptionsRequest(), pb.GetSubscriptionsResponse
        )
        await self._ok("GetSubscriptions", (code, details))
        assert response is not None
        return list(response.subscriptions)

    async def _ok(self, method: str, result: StatusResult) -> None:
        code, details = result
        if code is not grpc.StatusCode.OK:
            raise CaseFailure(f"{self.label}: {method} failed with {code.name}: {details!r}")
