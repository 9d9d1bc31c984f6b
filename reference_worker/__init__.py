"""reference_worker: a typed Python worker SDK for the agentworker protocol.

A `Worker` connects to a host, hosts `Agent` subclasses whose `@handler` methods are chosen by
the type hint of their message parameter, publishes events on topics and calls agents by id.
"""

from reference_worker._agent import Agent, AgentRuntime, RoutedAgent, handler, message_handler
from reference_worker._cancellation import CancellationToken
from reference_worker._config import TlsConfig
from reference_worker._connection import HostConnectionError
from reference_worker._context import DefaultTopicId, MessageContext, current_context
from reference_worker._errors import (
    AgentWorkerError,
    DeadlineExceededError,
    HandlerFailedError,
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    ShuttingDownError,
    TargetUnavailableError,
    UnknownTargetError,
    UnsupportedMessageError,
)
from reference_worker._ids import AgentId, AgentType, TopicId
from reference_worker._stub import CANONICAL_SERVICE, LEGACY_SERVICE
from reference_worker._subscriptions import (
    DEFAULT_TOPIC_TYPE,
    Subscription,
    SubscriptionSpec,
    TypePrefixSubscription,
    TypeSubscription,
    default_subscription,
    prefix_subscription,
    type_subscription,
)
from reference_worker._trace import TraceContext, current_trace, trace_scope
from reference_worker._worker import DEFAULT_CAPABILITIES, AgentFactory, Worker
from reference_worker.serialization import UnknownMessageTypeError

__version__ = "0.1.0"

__all__ = [
    "CANONICAL_SERVICE",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_TOPIC_TYPE",
    "LEGACY_SERVICE",
    "Agent",
    "AgentFactory",
    "AgentId",
    "AgentRuntime",
    "AgentType",
    "AgentWorkerError",
    "CancellationToken",
    "DeadlineExceededError",
    "DefaultTopicId",
    "HandlerFailedError",
    "HostConnectionError",
    "InvalidRequestError",
    "MessageContext",
    "OverloadedError",
    "PermissionDeniedError",
    "RoutedAgent",
    "ShuttingDownError",
    "Subscription",
    "SubscriptionSpec",
    "TargetUnavailableError",
    "TlsConfig",
    "TopicId",
    "TraceContext",
    "TypePrefixSubscription",
    "TypeSubscription",
    "UnknownMessageTypeError",
    "UnknownTargetError",
    "UnsupportedMessageError",
    "Worker",
    "__version__",
    "current_context",
    "current_trace",
    "default_subscription",
    "handler",
    "message_handler",
    "prefix_subscription",
    "trace_scope",
    "type_subscription",
]
