"""What a handler knows about the message it handles, and the AutoGen topic helper."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

from reference_worker._cancellation import CancellationToken
from reference_worker._ids import DEFAULT_TOPIC_TYPE, AgentId, TopicId
from reference_worker._trace import TraceContext

__all__ = ["DefaultTopicId", "MessageContext", "current_context", "set_current_context"]


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What a handler knows about the message it handles."""

    is_rpc: bool
    message_id: str
    """The CloudEvent id of an event, or the request id of an RPC as this worker received it."""
    type_name: str
    content_type: str
    sender: AgentId | None = None
    topic_id: TopicId | None = None
    trace: TraceContext | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    cancellation_token: CancellationToken = field(default_factory=CancellationToken)
    """Cancelled when the call's deadline passes or the worker begins to drain."""
    deadline: float | None = None
    """When an RPC's caller stops waiting, on the event loop's clock (`loop.time()`); None for
    an event."""


_current_context: ContextVar[MessageContext | None] = ContextVar(
    "agentworker_message_context", default=None
)


def current_context() -> MessageContext | None:
    """The context of the message whose handler is running, if any."""
    return _current_context.get()


def set_current_context(context: MessageContext | None) -> None:
    _current_context.set(context)


def DefaultTopicId(type: str = DEFAULT_TOPIC_TYPE, source: str | None = None) -> TopicId:
    """AutoGen's default topic: type "default" and, inside a handler, the source of the topic
    the handled message arrived on (else "default")."""
    if source is None:
        context = current_context()
        topic = context.topic_id if context is not None else None
        source = topic.source if topic is not None else "default"
    return TopicId(type, source)
