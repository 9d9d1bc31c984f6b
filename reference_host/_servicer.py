"""gRPC handlers of AgentRpcService, served under the v1 and the legacy service names.

Both names share one set of handlers (AWP-VER-003). Data and control channels stream
pre-encoded bytes: the response serializer of the two streaming methods is the identity.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Final

import grpc

from agentworker.v1 import agentworker_pb2 as pb

from . import _handshake
from ._config import HostConfig
from ._connection import Channel, ControlConnection, DataConnection
from ._control import ControlRouter
from ._directory import Directory
from ._errors import FailedPrecondition, HostError, Unavailable, status_code
from ._logging import log
from ._metrics import Metrics
from ._outbound import Outbound
from ._registry import Registry, validate_agent_type
from ._router import Router
from ._security import Authenticator, check_agent_type_allowed
from ._subscriptions import SubscriptionTable, validate_subscription

SERVICE_NAME: Final = pb.DESCRIPTOR.services_by_name["AgentRpcService"].full_name
LEGACY_SERVICE_NAME: Final = "agents.AgentRpc"

# How long a closing channel may take to write what is still queued.
_FLUSH_TIMEOUT_S: Final = 5.0

_logger = logging.getLogger("reference_host.servicer")

DataContext = grpc.aio.ServicerContext[pb.OpenChannelRequest, bytes]
ControlContext = grpc.aio.ServicerContext[pb.OpenControlChannelRequest, bytes]
Metadata = dict[str, str | bytes]


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> Metadata:
    return {item[0]: item[1] for item in context.invocation_metadata() or ()}


class AgentRpcServicer:
    """Typed async handlers of the six AgentRpcService methods."""

    def __init__(
        self,
        *,
        config: HostConfig,
        metrics: Metrics,
        authenticator: Authenticator,
        registry: Registry,
        subscriptions: SubscriptionTable,
        router: Router,
        control: ControlRouter,
        directory: Directory,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._auth = authenticator
        self._registry = registry
        self._subscriptions = subscriptions
        self._router = router
        self._control = control
        self._directory = directory
        self._offered = _handshake.host_capabilities(config)
        self._channel_wait_s = config.channel_wait_ms / 1000.0

    # -- streaming channels --------------------------------------------------------------

    async def OpenChannel(
        self, request_iterator: AsyncIterator[pb.OpenChannelRequest], context: DataContext
    ) -> None:
        """Serve a worker's data channel until either side ends it."""
        try:
            metadata = _metadata(context)
            client_id, _ = self._auth.authenticate(metadata)
            hello = _handshake.parse_hello(metadata.get(_handshake.HELLO_METADATA_KEY))
            if self._router.draining:
                raise Unavailable("the host is shutting down")
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        connection_id = self._router.next_connection_id()
        capabilities: frozenset[int] = frozenset()
        max_batch = 1
        worker_limit = _handshake.MIN_MESSAGE_BYTES
        if hello is not None:
            capabilities = _handshake.negotiate(hello.capabilities, self._offered)
            max_batch = _handshake.worker_max_batch(hello)
            worker_limit = _handshake.worker_max_message_bytes(hello)
        batching = pb.CAPABILITY_BATCHING in capabilities
        conn = DataConnection(
            client_id,
            connection_id,
            Outbound(
                self._config.queue_limit,
                self._metrics,
                batching=batching,
                max_batch=max_batch,
                # Leave room for the Batch frame's own tag and length (AWP-BAT-006).
                max_batch_bytes=min(self._config.max_message_bytes, worker_limit) - 16,
            ),
            v1=hello is not None,
            capabilities=capabilities,
            batching=batching,
            shares_types=pb.CAPABILITY_SHARED_AGENT_TYPES in capabilities,
        )
        try:
            await self._directory.claim(conn)
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        try:
            self._router.attach(conn)
        except HostError as exc:
            self._directory.release(conn)
            await context.abort(status_code(exc), str(exc))
        try:
            initial: tuple[tuple[str, bytes], ...] = ()
            if hello is not None:
                welcome = _handshake.welcome(self._config, capabilities, connection_id)
                initial = ((_handshake.WELCOME_METADATA_KEY, welcome),)
            await context.send_initial_metadata(initial)
            await _serve_channel(
                conn,
                self._router.read_loop(conn, request_iterator),
                context.write,
                lambda: self._close_data(conn),
            )
        finally:
            self._close_data(conn)
        if conn.close_status is not None:
            await context.abort(*conn.close_status)

    async def OpenControlChannel(
        self,
        request_iterator: AsyncIterator[pb.OpenControlChannelRequest],
        context: ControlContext,
    ) -> None:
        """Serve a worker's control channel until either side ends it."""
        try:
            metadata = _metadata(context)
            client_id, _ = self._auth.authenticate(metadata)
            hello = _handshake.parse_hello(metadata.get(_handshake.HELLO_METADATA_KEY))
            timeout_ms = _handshake.parse_control_timeout(
                metadata.get(_handshake.CONTROL_TIMEOUT_METADATA_KEY)
            )
            if self._control.draining:
                raise Unavailable("the host is shutting down")
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        conn = ControlConnection(
            client_id,
            self._router.next_connection_id(),
            Outbound(self._config.queue_limit, self._metrics, control=True),
            v1=hello is not None,
            timeout_ms=timeout_ms,
        )
        try:
            await self._directory.claim_control(conn)
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        try:
            self._control.attach(conn)
        except HostError as exc:
            self._directory.release_control(conn)
            await context.abort(status_code(exc), str(exc))
        try:
            await context.send_initial_metadata(())
            await _serve_channel(
                conn,
                self._control.read_loop(conn, request_iterator),
                context.write,
                lambda: self._control.detach(conn),
            )
        finally:
            self._control.detach(conn)
            self._directory.release_control(conn)
        if conn.close_status is not None:
            await context.abort(*conn.close_status)

    # -- unary calls ---------------------------------------------------------------------

    async def RegisterAgent(
        self,
        request: pb.RegisterAgentRequest,
        context: grpc.aio.ServicerContext[pb.RegisterAgentRequest, pb.RegisterAgentResponse],
    ) -> pb.RegisterAgentResponse:
        """Register ``request.type`` for the caller (AWP-REG-001, AWP-REG-005)."""
        try:
            client_id, policy = self._auth.authenticate(_metadata(context))
            validate_agent_type(request.type)
            check_agent_type_allowed(policy, request.type)
            conn = await self._data_channel(client_id)
            added = await self._directory.register(conn, request.type)
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        if added:
            log(
                _logger,
                logging.INFO,
                "agent_type.registered",
                client_id=client_id,
                agent_type=request.type,
                members=len(self._registry.members(request.type)),
            )
        return pb.RegisterAgentResponse()

    async def AddSubscription(
        self,
        request: pb.AddSubscriptionRequest,
        context: grpc.aio.ServicerContext[pb.AddSubscriptionRequest, pb.AddSubscriptionResponse],
    ) -> pb.AddSubscriptionResponse:
        """Add a subscription owned by the caller (AWP-SUB-001)."""
        try:
            client_id, _ = self._auth.authenticate(_metadata(context))
            # Validate before waiting for the channel, so malformed requests fail fast.
            validate_subscription(request.subscription)
            await self._data_channel(client_id)
            added = await self._directory.add_subscription(client_id, request.subscription)
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        if added:
            log(
                _logger,
                logging.DEBUG,
                "subscription.added",
                client_id=client_id,
                subscription_id=request.subscription.id,
            )
        return pb.AddSubscriptionResponse()

    async def RemoveSubscription(
        self,
        request: pb.RemoveSubscriptionRequest,
        context: grpc.aio.ServicerContext[
            pb.RemoveSubscriptionRequest, pb.RemoveSubscriptionResponse
        ],
    ) -> pb.RemoveSubscriptionResponse:
        """Remove a subscription the caller owns (AWP-SUB-004)."""
        try:
            client_id, _ = self._auth.authenticate(_metadata(context))
            await self._data_channel(client_id)
            await self._directory.remove_subscription(client_id, request.id)
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        return pb.RemoveSubscriptionResponse()

    async def GetSubscriptions(
        self,
        request: pb.GetSubscriptionsRequest,
        context: grpc.aio.ServicerContext[pb.GetSubscriptionsRequest, pb.GetSubscriptionsResponse],
    ) -> pb.GetSubscriptionsResponse:
        """List every subscription the host holds (AWP-SUB-006)."""
        try:
            self._auth.authenticate(_metadata(context))
        except HostError as exc:
            await context.abort(status_code(exc), str(exc))
        return pb.GetSubscriptionsResponse(subscriptions=self._subscriptions.all())

    def _close_data(self, conn: DataConnection) -> None:
        # The directory hears first, so a cluster tells the other nodes the worker left before
        # any failure this causes reaches them (AWP-CLU-003).
        self._directory.release(conn)
        self._router.detach(conn)

    async def _data_channel(self, client_id: str) -> DataConnection:
        if self._router.draining:
            raise Unavailable("the host is shutting down")
        conn = await self._router.channel_for(client_id, self._channel_wait_s)
        if conn is None or conn.closed:
            raise FailedPrecondition(
                f"client {client_id!r} has no open data channel; call OpenChannel first"
            )
        return conn

    # -- registration --------------------------------------------------------------------

    def generic_handlers(self) -> list[grpc.GenericRpcHandler[Any, Any]]:
        """Return handlers for the v1 service and the legacy ``agents.AgentRpc`` path."""
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "OpenChannel": grpc.stream_stream_rpc_method_handler(
                self.OpenChannel,
                request_deserializer=pb.OpenChannelRequest.FromString,
                response_serializer=None,
            ),
            "OpenControlChannel": grpc.stream_stream_rpc_method_handler(
                self.OpenControlChannel,
                request_deserializer=pb.OpenControlChannelRequest.FromString,
                response_serializer=None,
            ),
            "RegisterAgent": grpc.unary_unary_rpc_method_handler(
                self.RegisterAgent,
                request_deserializer=pb.RegisterAgentRequest.FromString,
                response_serializer=pb.RegisterAgentResponse.SerializeToString,
            ),
            "AddSubscription": grpc.unary_unary_rpc_method_handler(
                self.AddSubscription,
                request_deserializer=pb.AddSubscriptionRequest.FromString,
                response_serializer=pb.AddSubscriptionResponse.SerializeToString,
            ),
            "RemoveSubscription": grpc.unary_unary_rpc_method_handler(
                self.RemoveSubscription,
                request_deserializer=pb.RemoveSubscriptionRequest.FromString,
                response_serializer=pb.RemoveSubscriptionResponse.SerializeToString,
            ),
            "GetSubscriptions": grpc.unary_unary_rpc_method_handler(
                self.GetSubscriptions,
                request_deserializer=pb.GetSubscriptionsRequest.FromString,
                response_serializer=pb.GetSubscriptionsResponse.SerializeToString,
            ),
        }
        return [
            grpc.method_handlers_generic_handler(SERVICE_NAME, methods),
            grpc.method_handlers_generic_handler(LEGACY_SERVICE_NAME, methods),
        ]


async def _serve_channel(
    conn: Channel,
    reading: Coroutine[Any, Any, None],
    write: Callable[[bytes], Coroutine[Any, Any, None]],
    detach: Callable[[], None],
) -> None:
    """Run a channel's reader and writer until the channel is done, then clean up."""
    reader = asyncio.create_task(reading)
    writer = asyncio.create_task(conn.outbound.run(write))

    def _reader_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Transport errors end read_loop quietly; anything else is a bug worth seeing.
            log(
                _logger,
                logging.ERROR,
                "channel.reader_failed",
                client_id=conn.client_id,
                connection_id=conn.connection_id,
                error=repr(exc),
            )
        conn.end()

    def _writer_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A write fails when the peer has gone away.
            log(
                _logger,
                logging.DEBUG,
                "channel.write_failed",
                client_id=conn.client_id,
                connection_id=conn.connection_id,
                error=repr(exc),
            )
        conn.end()

    reader.add_done_callback(_reader_done)
    writer.add_done_callback(_writer_done)
    try:
        await conn.done
        reader.cancel()
        detach()
        if conn.flush_on_close and not writer.done():
            conn.outbound.finish()
            await asyncio.wait({writer}, timeout=_FLUSH_TIMEOUT_S)
    finally:
        reader.cancel()
        conn.outbound.close()
        writer.cancel()
