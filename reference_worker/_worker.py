"""The Worker: the public face that ties connection, registry, dispatch and calls together."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from agentworker.v1 import agentworker_pb2
from reference_worker._agent import Agent
from reference_worker._cancellation import CancellationToken
from reference_worker._cloudevent import build_cloud_event
from reference_worker._config import TlsConfig, is_loopback_address, settings_from_env
from reference_worker._connection import Connection, ConnectionSettings
from reference_worker._control import StateService
from reference_worker._errors import DeadlineExceededError, TargetUnavailableError, error_for_code
from reference_worker._ids import AgentId, TopicId
from reference_worker._inbound import Inbound
from reference_worker._outbound import OutboundCalls
from reference_worker._registration import announce
from reference_worker._registry import AgentFactory, AgentRegistry
from reference_worker._stub import CANONICAL_SERVICE
from reference_worker._subscriptions import Subscription, SubscriptionSpec, direct_subscription
from reference_worker._supervisor import Supervisor
from reference_worker._trace import current_trace
from reference_worker.serialization import SerializationRegistry

__all__ = ["DEFAULT_CAPABILITIES", "AgentFactory", "Worker"]

_log = logging.getLogger("reference_worker")

Capability = agentworker_pb2.Capability
OutFrame = agentworker_pb2.OpenChannelRequest

DEFAULT_CAPABILITIES: tuple[Capability, ...] = (
    agentworker_pb2.CAPABILITY_BATCHING,
    agentworker_pb2.CAPABILITY_STATE,
    agentworker_pb2.CAPABILITY_RECONNECT,
    agentworker_pb2.CAPABILITY_TRACE_CONTEXT,
)
LOCAL_TIMEOUT_MARGIN = 1.0  # AWP-RPC-012
NO_WELCOME_TIMEOUT = 60.0  # AWP-RPC-012: a call's default when there is no welcome
CONNECT_WAIT = 30.0  # how long publish and send wait for a reconnect


class Worker:
    """A worker process's runtime: one connection to a host and the agents it serves.

    >>> worker = Worker("localhost:50051")
    >>> await worker.start()
    >>> await MyAgent.register(worker, "greeter", lambda: MyAgent())
    >>> await worker.publish_message(Greeting("hi"), DefaultTopicId())
    >>> await worker.stop()

    Arguments: `host_address` is HOST:PORT, or several (nodes of one cluster) to fail over
    between; `client_id` defaults to a fresh UUID; `tls` and `token` secure the connection;
    `capabilities` restricts what the hello announces (the security ones follow `tls` and
    `token`); `max_concurrency` bounds running handlers and `max_queued` the messages waiting
    for them (AWP-FLOW-031); `reconnect` enables CAPABILITY_RECONNECT; `service` is the host's
    service path (`LEGACY_SERVICE` talks to an AutoGen host).
    """

    def __init__(
        self,
        host_address: str | Sequence[str] = "localhost:50051",
        *,
        client_id: str | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
        capabilities: Iterable[Capability] | None = None,
        max_concurrency: int = 256,
        max_queued: int = 4096,
        reconnect: bool = True,
        service: str = CANONICAL_SERVICE,
    ) -> None:
        addresses = [host_address] if isinstance(host_address, str) else list(host_address)
        if not addresses:
            raise ValueError("at least one host address is needed")
        for address in addresses:
            if token and tls is None and not is_loopback_address(address):
                # AWP-SEC-007: never send a token in clear to another machine.
                raise ValueError(
                    "refusing to send a bearer token over a non-TLS, non-loopback link"
                )
        self.host_addresses = addresses
        self.client_id = client_id or str(uuid.uuid4())  # AWP-CONN-006
        self._tls = tls
        self._token = token
        self._service = service
        self.capabilities = self._capabilities(capabilities, reconnect)
        self.serializers = SerializationRegistry()
        self._registry = AgentRegistry(self.serializers)
        self._outbound = OutboundCalls()
        self._inbound = Inbound(
            self,
            self._registry,
            self._outbound,
            max_running=max_concurrency,
            max_queued=max_queued,
        )
        self._state = StateService(self.client_id, self._local_agent)
        self._supervisor = Supervisor(
            addresses,
            self._settings,
            on_frame=self._inbound.on_frame,
            on_control=lambda conn, frame: self._state.on_frame(frame, conn.write_control),
            on_connected=self._on_connected,
            on_lost=self._on_lost,
            reconnect=agentworker_pb2.CAPABILITY_RECONNECT in self.capabilities,
        )
        self._started = False

    def _capabilities(
        self, requested: Iterable[Capability] | None, reconnect: bool
    ) -> tuple[Capability, ...]:
        wanted = list(DEFAULT_CAPABILITIES if requested is None else requested)
        if not reconnect and agentworker_pb2.CAPABILITY_RECONNECT in wanted:
            wanted.remove(agentworker_pb2.CAPABILITY_RECONNECT)
        # The security capabilities follow the configuration (AWP-VER-016).
        security = {
            agentworker_pb2.CAPABILITY_TLS: self._tls is not None,
            agentworker_pb2.CAPABILITY_MUTUAL_TLS: self._tls is not None and self._tls.mutual,
            agentworker_pb2.CAPABILITY_BEARER_TOKEN: bool(self._token),
        }
        wanted = [c for c in wanted if c not in security]
        wanted += [c for c, on in security.items() if on]
        return tuple(dict.fromkeys(wanted))

    @classmethod
    def from_env(cls, **kwargs: Any) -> Worker:
        """Builds a worker from the AGENTWORKER_* variables of spec section 16.1; the host
        address variable may list several addresses separated by commas (failover)."""
        settings = settings_from_env()
        return cls(
            settings.host_addresses,
            client_id=settings.client_id,
            tls=settings.tls,
            token=settings.token,
            **kwargs,
        )

    def _settings(self, address: str) -> ConnectionSettings:
        return ConnectionSettings(
            address=address,
            client_id=self.client_id,
            capabilities=self.capabilities,
            tls=self._tls,
            token=self._token,
            open_control_channel=agentworker_pb2.CAPABILITY_STATE in self.capabilities,
            service=self._service,
        )

    # -- state of the worker ------------------------------------------------------------------

    @property
    def host_address(self) -> str:
        """The address of the current (or last) connection."""
        return self._supervisor.address

    @property
    def connection(self) -> Connection | None:
        return self._supervisor.conn

    @property
    def connections(self) -> int:
        """Connections completed so far (reconnects count)."""
        return self._supervisor.connections

    @property
    def welcome(self) -> agentworker_pb2.ChannelWelcome | None:
        conn = self._supervisor.conn
        return conn.welcome if conn is not None else None

    def in_force(self, capability: Capability) -> bool:
        conn = self._supervisor.conn
        return conn is not None and conn.in_force(capability)

    @property
    def accepting(self) -> bool:
        return self._inbound.accepting

    @property
    def undecodable_events(self) -> int:
        return self._inbound.undecodable_events

    @property
    def undelivered_events(self) -> int:
        """Events not delivered because the worker was draining (AWP-CONN-023)."""
        return self._inbound.undelivered_events

    @property
    def overloaded_requests(self) -> int:
        """Requests answered OVERLOADED because the inbound queue was full (AWP-FLOW-031)."""
        return self._inbound.refused_overloaded

    @property
    def inbound_queue_depth(self) -> int:
        return self._inbound.dispatcher.queued

    @property
    def notices(self) -> list[agentworker_pb2.Notice]:
        return self._inbound.notices

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connects, registers every agent type and subscription; returns once they succeeded."""
        if self._started:
            raise RuntimeError("worker already started")
        self._started = True
        self._inbound.accepting = True
        self._inbound.dispatcher.reopen()
        try:
            await self._supervisor.start()
        except BaseException:
            self._started = False
            self._inbound.accepting = False
            raise

    async def _on_connected(self, conn: Connection) -> None:
        await announce(conn, list(self._registry.factories), list(self._registry.subscriptions))

    def _on_lost(self, conn: Connection) -> None:
        """AWP-CONN-019: fail every outbound call in flight; nobody is left waiting."""
        self._outbound.fail_all(TargetUnavailableError("data channel to the host was lost"))
        self._state.fail_all(TargetUnavailableError("control channel to the host was lost"))

    async def wait_connected(
        self,
        connections: int = 1,
        timeout: float = 30.0,  # noqa: ASYNC109 - public API: bounded wait
    ) -> None:
        """Waits until the worker has completed `connections` connections (reconnects count)."""
        await self._supervisor.wait_connected(connections, timeout)

    async def stop(self, grace: float = 5.0) -> None:
        """Drains as on SIGTERM (AWP-CONN-017): starts no new handler, answers queued requests
        with SHUTTING_DOWN, cancels running handlers' tokens and lets them finish within
        `grace` seconds, then half-closes the channels."""
        await self._inbound.drain(grace)
        await self._supervisor.stop(grace)
        self._started = False

    async def stop_when_signal(
        self,
        grace: float = 5.0,
        signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    ) -> None:
        """Runs until one of `signals` arrives, then drains and stops."""
        loop = asyncio.get_running_loop()
        received = asyncio.Event()
        for sig in signals:
            loop.add_signal_handler(sig, received.set)
        try:
            await received.wait()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        await self.stop(grace)

    # -- registration ---------------------------------------------------------------------

    def add_message_type(self, cls: type, type_name: str | None = None) -> None:
        """Registers a message class so that incoming payloads of its type name decode."""
        self.serializers.add_type(cls, type_name)

    async def register(
        self,
        type_name: str,
        factory: AgentFactory,
        *,
        subscriptions: Iterable[SubscriptionSpec] = (),
        agent_class: type[Agent] | None = None,
    ) -> None:
        """Registers an agent type, its direct-addressing prefix "<type>:" (AWP-SUB-011) and
        the given subscriptions; with a connection, they are sent to the host at once.

        `agent_class` names the class a factory function returns, so that its message types
        decode before the first instance exists (`Agent.register` passes it)."""
        self._registry.add_type(type_name, factory, agent_class)
        added = [direct_subscription(type_name)]
        added += [Subscription(spec, type_name) for spec in subscriptions]
        self._registry.subscriptions.extend(added)
        conn = self._supervisor.conn
        if conn is not None and self._supervisor.ready.is_set():
            try:
                await announce(conn, [type_name], added)
            except BaseException:
                self._registry.remove_type(type_name, added)
                raise

    async def add_subscription(
        self, subscription: SubscriptionSpec | Subscription, agent_type: str | None = None
    ) -> str:
        """Adds a subscription for a registered type; returns its id. Takes a rule and the
        agent type, or a bound subscription such as `TypeSubscription(topic, agent_type)`."""
        if isinstance(subscription, Subscription):
            bound = subscription
        elif agent_type is None:
            raise ValueError("a subscription rule needs the agent type it delivers to")
        else:
            bound = Subscription(subscription, agent_type)
        self._registry.subscriptions.append(bound)
        conn = self._supervisor.conn
        if conn is not None and self._supervisor.ready.is_set():
            await conn.add_subscription(bound.to_proto())
        return bound.id

    async def remove_subscription(self, subscription_id: str) -> None:
        registry = self._registry
        registry.subscriptions = [s for s in registry.subscriptions if s.id != subscription_id]
        conn = self._supervisor.conn
        if conn is not None and self._supervisor.ready.is_set():
            await conn.remove_subscription(subscription_id)

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._registry.subscriptions)

    def _local_agent(self, agent_id: AgentId) -> Agent:
        return self._registry.get(agent_id, self)

    @property
    def agent_ids(self) -> list[AgentId]:
        """The AgentIds of the agent instances this worker has created."""
        return self._registry.agent_ids

    async def agent(self, agent_id: AgentId) -> Agent:
        """The local instance for an AgentId (created if needed)."""
        return self._local_agent(agent_id)

    # -- outbound -----------------------------------------------------------------------------

    def _trace_items(self) -> dict[str, str]:
        if agentworker_pb2.CAPABILITY_TRACE_CONTEXT not in self.capabilities:
            return {}
        trace = current_trace()
        return trace.items() if trace is not None else {}

    async def publish(
        self, message: object, topic: TopicId, *, sender: AgentId | None = None
    ) -> None:
        """Publishes an event on a topic (AWP-PUB-001)."""
        encoded = self.serializers.serialize(message)
        trace = current_trace() if self._trace_items() else None
        event = build_cloud_event(encoded, topic, sender, trace)
        conn = await self._supervisor.connection(CONNECT_WAIT)
        assert conn.writer is not None
        await conn.writer.put(OutFrame(cloud_event=event))

    async def publish_message(
        self,
        message: object,
        topic_id: TopicId,
        *,
        sender: AgentId | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> None:
        """The AutoGen name of `publish`."""
        del cancellation_token  # a publish is queued at once; there is nothing to cancel
        await self.publish(message, topic_id, sender=sender)

    def _default_timeout(self) -> float:
        welcome = self.welcome
        if welcome is not None and welcome.default_rpc_timeout_ms:
            return welcome.default_rpc_timeout_ms / 1000
        return NO_WELCOME_TIMEOUT

    async def send(
        self,
        message: object,
        agent_id: AgentId,
        *,
        sender: AgentId | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - public API: a per-call timeout
        cancellation_token: CancellationToken | None = None,
    ) -> Any:
        """Calls an agent and returns its decoded reply.

        `timeout` in seconds; None leaves the deadline to the host's announced default
        (`ChannelWelcome.default_rpc_timeout_ms`, AWP-RPC-010). Raises an AgentWorkerError
        subclass for an error response, DeadlineExceededError when no response arrives within
        the timeout plus a margin (AWP-RPC-012), TargetUnavailableError when the channel is
        lost meanwhile (AWP-CONN-019), and CancelledError when `cancellation_token` fires.
        """
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        encoded = self.serializers.serialize(message)
        loop = asyncio.get_running_loop()
        start = loop.time()
        request = agentworker_pb2.RpcRequest(
            target=agent_id.to_proto(),
            payload=agentworker_pb2.Payload(
                data_type=encoded.type_name,
                data_content_type=encoded.content_type,
                data=encoded.data,
            ),
            metadata=self._trace_items(),
            timeout_ms=0 if timeout is None else max(1, int(timeout * 1000)),
        )
        if sender is not None:
            request.source.CopyFrom(sender.to_proto())
        limit = timeout
        request_id = ""
        try:
            conn = await self._supervisor.connection(timeout or CONNECT_WAIT)
            if limit is None:
                limit = self._default_timeout()  # the welcome of the connection it goes on
            request_id, future = self._outbound.begin()  # unique per connection (AWP-RPC-001)
            request.request_id = request_id
            async with asyncio.timeout_at(start + limit + LOCAL_TIMEOUT_MARGIN):
                if cancellation_token is not None:
                    cancellation_token.link_future(future)  # type: ignore[arg-type]
                assert conn.writer is not None
                await conn.writer.put(OutFrame(request=request))
                # A calling handler frees its slot meanwhile (AWP-FLOW-030).
                async with self._inbound.dispatcher.waiting_for_call():
                    response = await future
        except TimeoutError:
            raise DeadlineExceededError(
                f"no response from {agent_id} within {limit or 0:g} s"
            ) from None
        finally:
            self._outbound.end(request_id)
        if response.error or response.error_code != agentworker_pb2.ERROR_CODE_UNSPECIFIED:
            raise error_for_code(response.error_code, response.error)  # AWP-ERR-003
        if not response.HasField("payload"):
            # A legacy peer's answer to a failure without a message (AWP-RPC-023).
            raise error_for_code(
                agentworker_pb2.ERROR_CODE_HANDLER_FAILED, f"{agent_id} answered with no payload"
            )
        payload = response.payload
        return self.serializers.deserialize(
            payload.data_type, payload.data_content_type, payload.data
        )

    async def send_message(
        self,
        message: object,
        recipient: AgentId,
        *,
        sender: AgentId | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - public API: a per-call timeout
    ) -> Any:
        """The AutoGen name of `send`."""
        return await self.send(
            message,
            recipient,
            sender=sender,
            timeout=timeout,
            cancellation_token=cancellation_token,
        )

    async def save_agent_state(
        self,
        agent_id: AgentId,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - public API: bounded call
    ) -> str:
        """Asks the host for the state of any agent (served by whichever worker hosts it)."""
        conn = await self._supervisor.connection(timeout)
        async with self._inbound.dispatcher.waiting_for_call():
            response = await self._state.request(
                agent_id,
                agentworker_pb2.SaveStateRequest(agent_id=agent_id.to_proto()),
                conn.write_control,
                timeout,
            )
        assert isinstance(response, agentworker_pb2.SaveStateResponse)
        return response.state

    async def load_agent_state(
        self,
        agent_id: AgentId,
        state: str,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - public API: bounded call
    ) -> None:
        """Replaces the state of any agent through the host's control channel."""
        conn = await self._supervisor.connection(timeout)
        async with self._inbound.dispatcher.waiting_for_call():
            await self._state.request(
                agent_id,
                agentworker_pb2.LoadStateRequest(agent_id=agent_id.to_proto(), state=state),
                conn.write_control,
                timeout,
            )
