"""Inbound dispatch: routes each frame read from the data channel and runs the handlers.

Responses and notices complete outbound calls at once; requests and events go to their agents'
mailboxes (see _mailbox), whose handlers run here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from agentworker.v1 import agentworker_pb2
from reference_worker._agent import Agent, AgentRuntime
from reference_worker._cloudevent import ReceivedEvent, event_sender, parse_cloud_event
from reference_worker._connection import Connection
from reference_worker._context import MessageContext, set_current_context
from reference_worker._errors import AgentWorkerError
from reference_worker._ids import AgentId, TopicId
from reference_worker._mailbox import Delivery, Dispatcher
from reference_worker._outbound import OutboundCalls
from reference_worker._registry import AgentRegistry
from reference_worker._trace import TraceContext, set_current_trace, trace_from_carrier
from reference_worker.serialization import SerializationError, UnknownMessageTypeError

__all__ = ["Inbound"]

_log = logging.getLogger("reference_worker")

InFrame = agentworker_pb2.OpenChannelResponse
OutFrame = agentworker_pb2.OpenChannelRequest
Code = agentworker_pb2.ErrorCode


@dataclass(slots=True)
class _Request:
    conn: Connection
    request: agentworker_pb2.RpcRequest
    deadline: float | None  # loop time: arrival + timeout_ms (AWP-FLOW-033)


@dataclass(slots=True)
class _Event:
    agent: Agent
    event: ReceivedEvent


_Work = _Request | _Event


class Inbound:
    """Reads frames for one worker; runs handlers through a per-agent Dispatcher."""

    def __init__(
        self,
        runtime: AgentRuntime,
        registry: AgentRegistry,
        outbound: OutboundCalls,
        *,
        max_running: int,
        max_queued: int,
    ) -> None:
        self._runtime = runtime
        self._registry = registry
        self._outbound = outbound
        self.dispatcher: Dispatcher[_Work] = Dispatcher(
            self._serve, max_running=max_running, max_queued=max_queued
        )
        self.accepting = False
        self.undecodable_events = 0
        self.undelivered_events = 0
        self.refused_overloaded = 0
        self.notices: list[agentworker_pb2.Notice] = []

    # -- reading ------------------------------------------------------------------------------

    async def on_frame(self, conn: Connection, frame: InFrame) -> None:
        kind = frame.WhichOneof("message")
        if kind == "batch":
            for inner in frame.batch.messages:  # in order, as if sent alone (AWP-BAT-003)
                if inner.WhichOneof("message") == "batch":
                    _log.warning("ignoring a nested batch")
                    continue
                await self.on_frame(conn, inner)
        elif kind == "response":
            self._outbound.on_response(frame.response)
        elif kind == "request":
            await self._on_request(conn, frame.request)
        elif kind == "cloud_event":
            await self._on_event(frame.cloud_event)
        elif kind == "notice":
            self._on_notice(frame.notice)
        else:
            # AWP-CONN-013: unknown case (a later version's); keep the channel open.
            _log.warning("ignoring a frame with no known case (%d bytes)", frame.ByteSize())

    def _on_notice(self, notice: agentworker_pb2.Notice) -> None:
        name = (
            agentworker_pb2.ErrorCode.Name(notice.code)
            if notice.code in agentworker_pb2.ErrorCode.values()
            else str(notice.code)
        )
        _log.warning("host notice %s: %s", name, notice.message)
        # Kept for the application; a notice's request_id is the host's id of a request it
        # delivered here, so it never ends one of our own calls (AWP-ERR-022).
        self.notices.append(notice)
        del self.notices[:-100]

    async def _on_request(self, conn: Connection, request: agentworker_pb2.RpcRequest) -> None:
        if not self.accepting:  # draining: no new handlers (AWP-CONN-023)
            await _respond(
                conn, _error(request, Code.ERROR_CODE_SHUTTING_DOWN, "worker is draining")
            )
            return
        deadline = None
        if request.timeout_ms:
            deadline = asyncio.get_running_loop().time() + request.timeout_ms / 1000
        target = AgentId.from_proto(request.target)
        if not self.dispatcher.offer(Delivery(target, _Request(conn, request, deadline))):
            self.refused_overloaded += 1  # AWP-FLOW-031: refuse at once, keep reading
            await _respond(
                conn,
                _error(
                    request,
                    Code.ERROR_CODE_OVERLOADED,
                    f"worker inbound queue is full ({self.dispatcher.max_queued} messages)",
                ),
            )

    async def _on_event(self, event: Any) -> None:
        topic = TopicId(event.type, event.source)
        targets = self._registry.recipients(topic, event_sender(event))
        if not targets:
            return
        if not self.accepting:
            self.undelivered_events += 1  # AWP-CONN-023: logged and counted
            _log.info("draining: not delivering event %s", event.id)
            return
        agents: list[Agent] = []
        for agent_id in targets:
            try:
                # Created before decoding: the instance's class names the message types.
                agents.append(self._registry.get(agent_id, self._runtime))
            except Exception:
                _log.exception("cannot create agent %s for event %s", agent_id, event.id)
        try:
            received = parse_cloud_event(event, self._registry.serializers)
        except (SerializationError, UnknownMessageTypeError) as exc:
            # AWP-PUB-022: log with the event id, count, keep going.
            self.undecodable_events += 1
            _log.warning("cannot decode event %s: %s", event.id, exc)
            return
        deliveries: list[Delivery[_Work]] = [
            Delivery(agent.id, _Event(agent, received))
            for agent in agents
            if _accepts(agent, received.message)
        ]
        await self.dispatcher.put(deliveries)  # waits only while the queue is full (FLOW-032)

    # -- draining -----------------------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """AWP-CONN-017: start nothing new; answer queued requests; let running ones finish."""
        self.accepting = False
        for delivery in self.dispatcher.close():
            work = delivery.item
            if isinstance(work, _Request):
                await _respond(
                    work.conn,
                    _error(work.request, Code.ERROR_CODE_SHUTTING_DOWN, "worker is draining"),
                )
            else:
                self.undelivered_events += 1
                _log.info("draining: event %s not delivered", work.event.event_id)
        await self.dispatcher.wait_running(grace)

    # -- handlers -----------------------------------------------------------------------------

    async def _serve(self, delivery: Delivery[_Work]) -> None:
        work = delivery.item
        if isinstance(work, _Event):
            await self._serve_event(work, delivery)
            return
        try:
            response = await self._handle_request(work, delivery)
        except asyncio.CancelledError:
            await _respond(
                work.conn,
                _error(
                    work.request,
                    Code.ERROR_CODE_SHUTTING_DOWN,
                    "worker stopped before the handler finished",
                ),
            )
            raise
        await _respond(work.conn, response)  # exactly once, same id (AWP-RPC-006)

    async def _handle_request(
        self, work: _Request, delivery: Delivery[_Work]
    ) -> agentworker_pb2.RpcResponse:
        request = work.request
        loop = asyncio.get_running_loop()
        if work.deadline is not None and loop.time() >= work.deadline:
            return _error(  # AWP-FLOW-033: expired while queued; the handler never runs
                request,
                Code.ERROR_CODE_DEADLINE_EXCEEDED,
                f"the request's {request.timeout_ms} ms passed while it waited for its agent",
            )
        target = delivery.agent_id
        try:
            agent = self._registry.get(target, self._runtime)
        except LookupError as exc:
            return _error(request, Code.ERROR_CODE_UNKNOWN_TARGET, str(exc))
        except Exception as exc:
            return _error(
                request, Code.ERROR_CODE_HANDLER_FAILED, f"cannot create agent {target}: {exc!r}"
            )
        payload = request.payload
        serializers = self._registry.serializers
        try:
            message = serializers.deserialize(
                payload.data_type, payload.data_content_type, payload.data
            )
        except (SerializationError, UnknownMessageTypeError) as exc:
            return _error(request, Code.ERROR_CODE_UNSUPPORTED_MESSAGE, str(exc))  # AWP-RPC-021
        if not _accepts(agent, message):
            return _error(
                request,
                Code.ERROR_CODE_UNSUPPORTED_MESSAGE,
                f"{target} has no handler for {payload.data_type!r} ({payload.data_content_type})",
            )
        received = trace_from_carrier(
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
            cancellation_token=delivery.token,
            deadline=work.deadline,
        )
        try:
            reply = await _run_handler(agent, message, context, received)
        except _HandlerTimeout:
            return _error(
                request,
                Code.ERROR_CODE_DEADLINE_EXCEEDED,
                f"handler passed the request's {request.timeout_ms} ms deadline",
            )
        except Exception as exc:
            _log.info("handler for %s failed: %r", target, exc)
            return _error(request, Code.ERROR_CODE_HANDLER_FAILED, f"{type(exc).__name__}: {exc}")
        try:
            encoded = serializers.serialize(reply)
        except (SerializationError, TypeError) as exc:
            return _error(
                request, Code.ERROR_CODE_HANDLER_FAILED, f"cannot encode the reply: {exc}"
            )
        return agentworker_pb2.RpcResponse(
            request_id=request.request_id,
            payload=agentworker_pb2.Payload(
                data_type=encoded.type_name,
                data_content_type=encoded.content_type,
                data=encoded.data,
            ),
        )

    async def _serve_event(self, work: _Event, delivery: Delivery[_Work]) -> None:
        event = work.event
        trace = trace_from_carrier(event.traceparent, event.tracestate)
        context = MessageContext(
            is_rpc=False,
            message_id=event.event_id,
            type_name=event.type_name,
            content_type=event.content_type,
            sender=event.sender,
            topic_id=event.topic,
            trace=trace,
            cancellation_token=delivery.token,
        )
        try:
            await _run_handler(work.agent, event.message, context, trace)
        except Exception:
            _log.exception("event handler of %s failed on event %s", work.agent.id, event.event_id)


class _HandlerTimeout(Exception):
    pass


def _accepts(agent: Agent, message: object) -> bool:
    """An agent with a custom on_message takes everything; else a handler must match."""
    return type(agent).on_message is not Agent.on_message or agent.accepts(type(message))


async def _run_handler(
    agent: Agent, message: object, context: MessageContext, received: TraceContext | None
) -> Any:
    # The received trace context is the parent of the handler's work (AWP-OBS-004).
    set_current_trace(received.child() if received is not None else None)
    set_current_context(context)
    token = context.cancellation_token
    if context.deadline is None:
        return await agent.on_message(message, context)
    loop = asyncio.get_running_loop()
    expiry = loop.call_at(context.deadline, token.cancel)
    timer = asyncio.timeout_at(context.deadline)  # AWP-RPC-013: stop when it has passed
    try:
        async with timer:
            return await agent.on_message(message, context)
    except TimeoutError:
        if timer.expired():
            raise _HandlerTimeout from None
        raise
    finally:
        expiry.cancel()


async def _respond(conn: Connection, response: agentworker_pb2.RpcResponse) -> None:
    if conn.writer is None or conn.writer.closed:
        _log.info("cannot answer request %r: channel closed", response.request_id)
        return
    try:
        await conn.writer.put(OutFrame(response=response))
    except AgentWorkerError:
        _log.info("cannot answer request %r: channel closed", response.request_id)


def _error(
    request: agentworker_pb2.RpcRequest, code: Code, message: str
) -> agentworker_pb2.RpcResponse:
    return agentworker_pb2.RpcResponse(
        request_id=request.request_id, error=message or "failed", error_code=code
    )
