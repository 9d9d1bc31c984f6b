"""The Worker: connects to a host, hosts agents, publishes events and makes calls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import signal
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc

from agentworker.v1 import agentworker_pb2
from reference_worker._agent import Agent, MessageContext, instantiate
from reference_worker._cloudevent import (
    ReceivedEvent,
    build_cloud_event,
    event_sender,
    parse_cloud_event,
)
from reference_worker._config import TlsConfig, is_loopback_address, settings_from_env
from reference_worker._connection import Connection, ConnectionSettings, HostConnectionError
from reference_worker._control import StateService
from reference_worker._errors import (
    AgentWorkerError,
    DeadlineExceededError,
    TargetUnavailableError,
    error_for_code,
)
from reference_worker._ids import AgentId, TopicId
from reference_worker._stub import CANONICAL_SERVICE
from reference_worker._subscriptions import (
    Subscription,
    SubscriptionSpec,
    direct_subscription,
    recipients,
)
from reference_worker._trace import TraceContext, current_trace, set_current_trace
from reference_worker._trace import trace_from_carrier as _parse_trace
from reference_worker.serialization import (
    SerializationError,
    SerializationRegistry,
    UnknownMessageTypeError,
)

__all__ = ["DEFAULT_CAPABILITIES", "AgentFactory", "Worker"]

_log = logging.getLogger("reference_worker")

AgentFactory = Callable[[], Agent]
Capability = agentworker_pb2.Capability
InFrame = agentworker_pb2.OpenChannelResponse
OutFrame = agentworker_pb2.OpenChannelRequest

DEFAULT_CAPABILITIES: tuple[Capability, ...] = (
    agentworker_pb2.CAPABILITY_BATCHING,
    agentworker_pb2.CAPABILITY_STATE,
    agentworker_pb2.CAPABILITY_RECONNECT,
    agentworker_pb2.CAPABILITY_TRACE_CONTEXT,
)
LOCAL_TIMEOUT_MARGIN = 1.0  # AWP-RPC-012
BACKOFF_FIRST = 0.2
BACKOFF_CAP = 30.0


class Worker:
    """A worker process's runtime: one connection to the host and the agents it serves.

    >>> worker = Worker("localhost:50051")
    >>> await worker.start()
    >>> await worker.register("greeter", Greeter, subscriptions=[type_subscription("chat")])
    >>> await worker.publish(Greeting("hi"), TopicId("chat", "room-1"))
    >>> await worker.stop()

    Arguments: `host_address` is HOST:PORT; `client_id` defaults to a fresh UUID;
    `tls` and `token` secure the connection; `capabilities` restricts what the hello
    announces (the security ones follow `tls` and `token`); `max_concurrency` bounds running
    handlers (AWP-FLOW-004); `reconnect` enables CAPABILITY_RECONNECT; `service` is the host's
    service path (`LEGACY_SERVICE` talks to an AutoGen host).
    """

    def __init__(
        self,
        host_address: str = "localhost:50051",
        *,
        client_id: str | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
        capabilities: Iterable[Capability] | None = None,
        max_concurrency: int = 256,
        reconnect: bool = True,
        service: str = CANONICAL_SERVICE,
    ) -> None:
        if token and tls is None and not is_loopback_address(host_address):
            # AWP-SEC-007: never send a token in clear to another machine.
            raise ValueError("refusing to send a bearer token over a non-TLS, non-loopback link")
        self.host_address = host_address
        self.client_id = client_id or str(uuid.uuid4())  # AWP-CONN-006
        self._tls = tls
        self._token = token
        self._service = service
        self.capabilities = self._capabilities(capabilities, reconnect)
        self.serializers = SerializationRegistry()
        self._factories: dict[str, AgentFactory] = {}
        self._subscriptions: list[Subscription] = []
        self._agents: dict[AgentId, Agent] = {}
        self._agent_classes: set[type[Agent]] = set()
        self._pending: dict[str, asyncio.Future[agentworker_pb2.RpcResponse]] = {}
        self._request_ids = itertools.count(1)
        self._state = StateService(self.client_id, self._get_agent)
        self._handlers: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._conn: Connection | None = None
        self._ready = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._generation = asyncio.Condition()
        self._supervisor: asyncio.Task[None] | None = None
        self.connections = 0
        self.accepting = False
        self.undecodable_events = 0
        self.notices: list[agentworker_pb2.Notice] = []

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
        """Builds a worker from the AGENTWORKER_* variables of spec section 16.1."""
        settings = settings_from_env()
        return cls(
            settings.host_address,
            client_id=settings.client_id,
            tls=settings.tls,
            token=settings.token,
            **kwargs,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def connection(self) -> Connection | None:
        return self._conn

    @property
    def welcome(self) -> agentworker_pb2.ChannelWelcome | None:
        return self._conn.welcome if self._conn is not None else None

    def in_force(self, capability: Capability) -> bool:
        return self._conn is not None and self._conn.in_force(capability)

    async def start(self) -> None:
        """Connects, registers every agent type and subscription; returns once they succeeded."""
        if self._supervisor is not None:
            raise RuntimeError("worker already started")
        self._stop_requested.clear()
        self.accepting = True
        await self._connect()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="worker-supervisor"
        )

    async def _connect(self) -> None:
        settings = ConnectionSettings(
            address=self.host_address,
            client_id=self.client_id,
            capabilities=self.capabilities,
            tls=self._tls,
            token=self._token,
            open_control_channel=agentworker_pb2.CAPABILITY_STATE in self.capabilities,
            service=self._service,
        )
        conn = Connection(settings)
        try:
            await conn.open(
                lambda frame: self._on_frame(conn, frame),
                lambda frame: self._state.on_frame(frame, conn.write_control),
            )
            # AWP-CONN-007: the channel is open; now register and subscribe.
            for agent_type in list(self._factories):
                await conn.register_agent(agent_type)
            for subscription in list(self._subscriptions):
                await conn.add_subscription(subscription.to_proto())
        except BaseException:
            await conn.abort()
            raise
        self._conn = conn
        self.connections += 1
        self._ready.set()
        async with self._generation:
            self._generation.notify_all()
        _log.info(
            "connected to %s as %s (%s)",
            self.host_address,
            self.client_id,
            "v1" if conn.welcome is not None else "legacy host",
        )

    async def wait_connected(
        self,
        connections: int = 1,
        timeout: float = 30.0,  # noqa: ASYNC109 - public API: bounded wait
    ) -> None:
        """Waits until the worker has completed `connections` connections (reconnects count)."""
        async with asyncio.timeout(timeout), self._generation:
            await self._generation.wait_for(
                lambda: self.connections >= connections and self._ready.is_set()
            )

    async def _supervise(self) -> None:
        while True:
            conn = self._conn
            if conn is None:
                return
            await conn.lost.wait()
            self._on_lost(conn)
            if self._stop_requested.is_set():
                return
            _log.warning("lost the data channel to %s", self.host_address)
            await conn.abort()
            if agentworker_pb2.CAPABILITY_RECONNECT not in self.capabilities:
                self._conn = None
                return
            if not await self._reconnect():
                return

    async def _reconnect(self) -> bool:
        """Reconnects with exponential backoff and jitter (AWP-CONN-020, AWP-CONN-021)."""
        delay = BACKOFF_FIRST
        while not self._stop_requested.is_set():
            pause = random.uniform(delay / 2, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stop_requested.wait()
                    return False
            try:
                await self._connect()
                return True
            except (HostConnectionError, grpc.aio.AioRpcError, OSError) as exc:
                _log.info("reconnect failed (%s); retrying", exc)
                delay = min(delay * 2, BACKOFF_CAP)
            except Exception:
                _log.exception("reconnect failed unexpectedly; retrying")
                delay = min(delay * 2, BACKOFF_CAP)
        return False

    def _on_lost(self, conn: Connection) -> None:
        """AWP-CONN-019: fail every outbound call in flight; nobody is left waiting."""
        if self._conn is conn:
            self._ready.clear()
        error = TargetUnavailableError("data channel to the host was lost")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._state.fail_all(TargetUnavailableError("control channel to the host was lost"))

    async def stop(self, grace: float = 5.0) -> None:
        """Drains (AWP-CONN-017): no new handlers, running ones finish within `grace`, then the
        channels are half-closed and the connection ends."""
        self.accepting = False
        self._stop_requested.set()
        if self._handlers:
            _, late = await asyncio.wait(set(self._handlers), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        conn = self._conn
        if conn is not None:
            await conn.close(grace)
            self._on_lost(conn)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._conn = None

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
    ) -> None:
        """Registers an agent type, its direct-addressing prefix "<type>:" (AWP-SUB-011) and
        the given subscriptions; with a connection, they are sent to the host at once."""
        if type_name in self._factories:
            raise ValueError(f"agent type {type_name!r} is already registered")
        if isinstance(factory, type) and issubclass(factory, Agent):
            self._learn_types(factory)
        self._factories[type_name] = factory
        added = [direct_subscription(type_name)]
        added += [Subscription(spec, type_name) for spec in subscriptions]
        self._subscriptions.extend(added)
        conn = self._conn
        if conn is not None and self._ready.is_set():
            try:
                await conn.register_agent(type_name)
                for subscription in added:
                    await conn.add_subscription(subscription.to_proto())
            except BaseException:
                # The host refused: forget the type so that a reconnect does not retry it.
                del self._factories[type_name]
                self._subscriptions = [s for s in self._subscriptions if s not in added]
                raise

    async def add_subscription(self, spec: SubscriptionSpec, agent_type: str) -> str:
        """Adds a subscription for a registered type; returns its id."""
        subscription = Subscription(spec, agent_type)
        self._subscriptions.append(subscription)
        conn = self._conn
        if conn is not None and self._ready.is_set():
            await conn.add_subscription(subscription.to_proto())
        return subscription.id

    async def remove_subscription(self, subscription_id: str) -> None:
        self._subscriptions = [s for s in self._subscriptions if s.id != subscription_id]
        conn = self._conn
        if conn is not None and self._ready.is_set():
            await conn.remove_subscription(subscription_id)

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    def _learn_types(self, cls: type[Agent]) -> None:
        if cls in self._agent_classes:
            return
        self._agent_classes.add(cls)
        for message_type in cls.message_types():
            try:
                self.serializers.add_type(message_type)
            except (TypeError, ValueError):
                _log.debug("not registering %r for serialization", message_type)

    def _get_agent(self, agent_id: AgentId) -> Agent:
        """The instance for an AgentId, created on first use (AWP-REG-004)."""
        agent = self._agents.get(agent_id)
        if agent is None:
            factory = self._factories.get(agent_id.type)
            if factory is None:
                raise LookupError(f"agent type {agent_id.type!r} is not registered here")
            agent = instantiate(factory, self, agent_id)
            self._learn_types(type(agent))
            self._agents[agent_id] = agent
        return agent

    @property
    def agent_ids(self) -> list[AgentId]:
        """The AgentIds of the agent instances this worker has created."""
        return list(self._agents)

    async def agent(self, agent_id: AgentId) -> Agent:
        """The local instance for an AgentId (created if needed)."""
        return self._get_agent(agent_id)

    # -- outbound -----------------------------------------------------------------------------

    async def _connection(self, limit: float) -> Connection:
        if not self._ready.is_set():
            if self._supervisor is None or self._supervisor.done():
                raise TargetUnavailableError("worker is not connected")
            try:
                async with asyncio.timeout(limit):
                    await self._ready.wait()
            except TimeoutError:
                raise TargetUnavailableError("not connected to the host") from None
        conn = self._conn
        if conn is None or conn.writer is None or conn.writer.closed:
            raise TargetUnavailableError("not connected to the host")
        return conn

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
        conn = await self._connection(30.0)
        assert conn.writer is not None
        await conn.writer.put(OutFrame(cloud_event=event))

    async def send(
        self,
        message: object,
        agent_id: AgentId,
        *,
        sender: AgentId | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - public API: a per-call timeout, as in AutoGen
    ) -> Any:
        """Calls an agent and returns its decoded reply.

        Raises an AgentWorkerError subclass for an error response, DeadlineExceededError when
        no response arrives within `timeout` plus a margin (AWP-RPC-012), and
        TargetUnavailableError when the channel is lost meanwhile (AWP-CONN-019).
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        encoded = self.serializers.serialize(message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout + LOCAL_TIMEOUT_MARGIN
        request_id = str(next(self._request_ids))  # unique per connection (AWP-RPC-001)
        request = agentworker_pb2.RpcRequest(
            request_id=request_id,
            target=agent_id.to_proto(),
            payload=agentworker_pb2.Payload(
                data_type=encoded.type_name,
                data_content_type=encoded.content_type,
                data=encoded.data,
            ),
            metadata=self._trace_items(),
            timeout_ms=max(1, int(timeout * 1000)),
        )
        if sender is not None:
            request.source.CopyFrom(sender.to_proto())
        future: asyncio.Future[agentworker_pb2.RpcResponse] = loop.create_future()
        try:
            async with asyncio.timeout_at(deadline):
                conn = await self._connection(timeout)
                self._pending[request_id] = future
                assert conn.writer is not None
                await conn.writer.put(OutFrame(request=request))
                response = await future
        except TimeoutError:
            raise DeadlineExceededError(
                f"no response from {agent_id} within {timeout:g} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)
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

    async def save_agent_state(
        self,
        agent_id: AgentId,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - public API: bounded call
    ) -> str:
        """Asks the host for the state of any agent (served by whichever worker hosts it)."""
        conn = await self._connection(timeout)
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
        conn = await self._connection(timeout)
        await self._state.request(
            agent_id,
            agentworker_pb2.LoadStateRequest(agent_id=agent_id.to_proto(), state=state),
            conn.write_control,
            timeout,
        )

    # -- inbound ------------------------------------------------------------------------------

    async def _on_frame(self, conn: Connection, frame: InFrame) -> None:
        kind = frame.WhichOneof("message")
        if kind == "batch":
            for inner in frame.batch.messages:  # in order, as if sent alone (AWP-BAT-003)
                if inner.WhichOneof("message") == "batch":
                    _log.warning("ignoring a nested batch")
                    continue
                await self._on_frame(conn, inner)
        elif kind == "response":
            self._on_response(frame.response)
        elif kind == "request":
            await self._on_request(conn, frame.request)
        elif kind == "cloud_event":
            await self._on_event(frame.cloud_event)
        elif kind == "notice":
            self._on_notice(frame.notice)
        else:
            # AWP-CONN-013: unknown case (a later version's); keep the channel open.
            _log.warning("ignoring a frame with no known case (%d bytes)", frame.ByteSize())

    def _on_response(self, response: agentworker_pb2.RpcResponse) -> None:
        future = self._pending.pop(response.request_id, None)  # by id, any order (AWP-RPC-007)
        if future is None or future.done():
            # AWP-RPC-008: not ours (or already timed out): discard.
            _log.info("discarding response for unknown request id %r", response.request_id)
            return
        future.set_result(response)

    def _on_notice(self, notice: agentworker_pb2.Notice) -> None:
        _log.warning(
            "host notice %s: %s",
            agentworker_pb2.ErrorCode.Name(notice.code)
            if notice.code in agentworker_pb2.ErrorCode.values()
            else notice.code,
            notice.message,
        )
        # Kept for the application; a notice's request_id is the host's id of a request it
        # delivered here, so it never ends one of our own calls (AWP-ERR-022).
        self.notices.append(notice)
        del self.notices[:-100]

    def _spawn_handler(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._handlers.add(task)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            _log.error("handler task failed", exc_info=task.exception())

    async def _on_request(self, conn: Connection, request: agentworker_pb2.RpcRequest) -> None:
        await self._slots.acquire()  # bounded concurrency: stop reading when full
        if not self.accepting:  # draining: no new handlers (AWP-CONN-017)
            self._slots.release()
            await self._respond(
                conn,
                _error_response(
                    request, agentworker_pb2.ERROR_CODE_SHUTTING_DOWN, "worker is shutting down"
                ),
            )
            return
        self._spawn_handler(self._serve_request(conn, request))

    async def _serve_request(self, conn: Connection, request: agentworker_pb2.RpcRequest) -> None:
        try:
            response = await self._handle_request(request)
        except asyncio.CancelledError:
            with contextlib.suppress(AgentWorkerError):
                await self._respond(
                    conn,
                    _error_response(
                        request,
                        agentworker_pb2.ERROR_CODE_SHUTTING_DOWN,
                        "worker stopped before the handler finished",
                    ),
                )
            raise
        await self._respond(conn, response)  # exactly once, same id (AWP-RPC-006)

    async def _respond(self, conn: Connection, response: agentworker_pb2.RpcResponse) -> None:
        if conn.writer is None or conn.writer.closed:
            _log.info("cannot answer request %r: channel closed", response.request_id)
            return
        try:
            await conn.writer.put(OutFrame(response=response))
        except AgentWorkerError:
            _log.info("cannot answer request %r: channel closed", response.request_id)

    async def _handle_request(
        self, request: agentworker_pb2.RpcRequest
    ) -> agentworker_pb2.RpcResponse:
        unsupported = agentworker_pb2.ERROR_CODE_UNSUPPORTED_MESSAGE
        failed = agentworker_pb2.ERROR_CODE_HANDLER_FAILED
        target = AgentId.from_proto(request.target)
        try:
            agent = self._get_agent(target)
        except LookupError as exc:
            return _error_response(request, agentworker_pb2.ERROR_CODE_UNKNOWN_TARGET, str(exc))
        except Exception as exc:
            return _error_response(request, failed, f"cannot create agent {target}: {exc!r}")
        payload = request.payload
        try:
            message = self.serializers.deserialize(
                payload.data_type, payload.data_content_type, payload.data
            )
        except (SerializationError, UnknownMessageTypeError) as exc:
            return _error_response(request, unsupported, str(exc))  # AWP-RPC-021
        if type(agent).on_message is Agent.on_message and not agent.accepts(type(message)):
            return _error_response(
                request,
                unsupported,
                f"{target} has no handler for {payload.data_type!r} ({payload.data_content_type})",
            )
        received = _parse_trace(
            request.metadata.get("traceparent", ""), request.metadata.get("tracestate", "")
        )
        context = MessageContext(
            is_rpc=True,
            message_id=request.request_id,
            type_name=payload.data_type,
            content_type=payload.data_content_type,
            sender=AgentId.from_proto(request.source) if request.HasField("source") else None,
            trace=received,
            metadata=dict(request.metadata),
        )
        limit = request.timeout_ms / 1000 if request.timeout_ms else None
        try:
            reply = await self._run_handler(agent, message, context, received, limit)
        except _HandlerTimeout:
            return _error_response(
                request,
                agentworker_pb2.ERROR_CODE_DEADLINE_EXCEEDED,
                f"handler passed the request's {request.timeout_ms} ms deadline",
            )
        except Exception as exc:
            _log.info("handler for %s failed: %r", target, exc)
            return _error_response(request, failed, f"{type(exc).__name__}: {exc}")
        try:
            encoded = self.serializers.serialize(reply)
        except (SerializationError, TypeError) as exc:
            return _error_response(request, failed, f"cannot encode the reply: {exc}")
        return agentworker_pb2.RpcResponse(
            request_id=request.request_id,
            payload=agentworker_pb2.Payload(
                data_type=encoded.type_name,
                data_content_type=encoded.content_type,
                data=encoded.data,
            ),
        )

    async def _run_handler(
        self,
        agent: Agent,
        message: object,
        context: MessageContext,
        received: TraceContext | None,
        limit: float | None,
    ) -> Any:
        # The received trace context is the parent of the handler's work (AWP-OBS-004).
        set_current_trace(received.child() if received is not None else None)
        if limit is None:
            return await agent.on_message(message, context)
        timer = asyncio.timeout(limit)  # AWP-RPC-013: stop when the deadline has passed
        try:
            async with timer:
                return await agent.on_message(message, context)
        except TimeoutError:
            if timer.expired():
                raise _HandlerTimeout from None
            raise

    async def _on_event(self, event: Any) -> None:
        received: ReceivedEvent | None = None
        topic = TopicId(event.type, event.source)
        targets = recipients(self._subscriptions, topic, event_sender(event))
        if not targets:
            return
        if not self.accepting:
            _log.info("stopping: not delivering event %s", event.id)
            return
        agents: list[Agent] = []
        for agent_id in targets:
            try:
                agents.append(self._get_agent(agent_id))
            except Exception:
                _log.exception("cannot create agent %s for event %s", agent_id, event.id)
        try:
            received = parse_cloud_event(event, self.serializers)
        except (SerializationError, UnknownMessageTypeError) as exc:
            # AWP-PUB-022: log with the event id, count, keep going.
            self.undecodable_events += 1
            _log.warning("cannot decode event %s: %s", event.id, exc)
            return
        for agent in agents:
            if type(agent).on_message is Agent.on_message and not agent.accepts(
                type(received.message)
            ):
                continue
            await self._slots.acquire()
            self._spawn_handler(self._serve_event(agent, received))

    async def _serve_event(self, agent: Agent, event: ReceivedEvent) -> None:
        trace = _parse_trace(event.traceparent, event.tracestate)
        context = MessageContext(
            is_rpc=False,
            message_id=event.event_id,
            type_name=event.type_name,
            content_type=event.content_type,
            sender=event.sender,
            topic_id=event.topic,
            trace=trace,
        )
        try:
            await self._run_handler(agent, event.message, context, trace, None)
        except Exception:
            _log.exception("event handler of %s failed on event %s", agent.id, event.event_id)


class _HandlerTimeout(Exception):
    pass


def _error_response(
    request: agentworker_pb2.RpcRequest, code: agentworker_pb2.ErrorCode, message: str
) -> agentworker_pb2.RpcResponse:
    return agentworker_pb2.RpcResponse(
        request_id=request.request_id, error=message or "failed", error_code=code
    )
