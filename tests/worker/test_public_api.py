"""The package's public names are deliberate."""

from __future__ import annotations

import reference_worker

EXPECTED = {
    "CANONICAL_SERVICE",
    "LEGACY_SERVICE",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_TOPIC_TYPE",
    "Agent",
    "AgentFactory",
    "AgentId",
    "AgentRuntime",
    "AgentWorkerError",
    "DeadlineExceededError",
    "HandlerFailedError",
    "HostConnectionError",
    "InvalidRequestError",
    "MessageContext",
    "OverloadedError",
    "PermissionDeniedError",
    "ShuttingDownError",
    "Subscription",
    "SubscriptionSpec",
    "TargetUnavailableError",
    "TlsConfig",
    "TopicId",
    "TraceContext",
    "UnknownMessageTypeError",
    "UnknownTargetError",
    "UnsupportedMessageError",
    "Worker",
    "__version__",
    "current_trace",
    "default_subscription",
    "handler",
    "prefix_subscription",
    "trace_scope",
    "type_subscription",
    # AutoGen names and shapes
    "AgentType",
    "CancellationToken",
    "DefaultTopicId",
    "RoutedAgent",
    "TypePrefixSubscription",
    "TypeSubscription",
    "current_context",
    "message_handler",
}


def test_public_names_are_the_expected_list() -> None:
    assert set(reference_worker.__all__) == EXPECTED
    for name in reference_worker.__all__:
        assert hasattr(reference_worker, name), name


def test_every_error_subclasses_the_base() -> None:
    for name in reference_worker.__all__:
        value = getattr(reference_worker, name)
        if isinstance(value, type) and name.endswith("Error") and "Message" not in name:
            if name == "HostConnectionError":
                continue
            assert issubclass(value, reference_worker.AgentWorkerError), name
