"""Subscriptions: rules mapping topics to agent types, and local topic matching (AWP-SUB-010)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from agentworker.v1 import agentworker_pb2
from reference_worker._ids import AgentId, TopicId

__all__ = [
    "DEFAULT_TOPIC_TYPE",
    "Subscription",
    "SubscriptionSpec",
    "default_subscription",
    "direct_subscription",
    "prefix_subscription",
    "type_subscription",
]

DEFAULT_TOPIC_TYPE = "default"


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A subscription rule before it is bound to an agent type: exact type or prefix."""

    topic: str
    prefix: bool = False


def type_subscription(topic_type: str) -> SubscriptionSpec:
    """Matches topics whose type equals `topic_type`."""
    if not topic_type:
        raise ValueError("topic type must not be empty")
    return SubscriptionSpec(topic_type, prefix=False)


def prefix_subscription(prefix: str) -> SubscriptionSpec:
    """Matches topics whose type starts with `prefix`."""
    if not prefix:
        raise ValueError("topic type prefix must not be empty")
    return SubscriptionSpec(prefix, prefix=True)


def default_subscription() -> SubscriptionSpec:
    """Matches the topic type "default" (see `DefaultTopic`-style publishing)."""
    return SubscriptionSpec(DEFAULT_TOPIC_TYPE, prefix=False)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription owned by this worker, with the id it was added under."""

    spec: SubscriptionSpec
    agent_type: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def matches(self, topic: TopicId) -> bool:
        if self.spec.prefix:
            return topic.type.startswith(self.spec.topic)
        return topic.type == self.spec.topic

    def agent_for(self, topic: TopicId) -> AgentId:
        return AgentId(self.agent_type, topic.source)

    def to_proto(self) -> agentworker_pb2.Subscription:
        if self.spec.prefix:
            return agentworker_pb2.Subscription(
                id=self.id,
                type_prefix_subscription=agentworker_pb2.TypePrefixSubscription(
                    topic_type_prefix=self.spec.topic, agent_type=self.agent_type
                ),
            )
        return agentworker_pb2.Subscription(
            id=self.id,
            type_subscription=agentworker_pb2.TypeSubscription(
                topic_type=self.spec.topic, agent_type=self.agent_type
            ),
        )


def direct_subscription(agent_type: str) -> Subscription:
    """The direct-addressing subscription `"<type>:"` every registered type gets (AWP-SUB-011)."""
    return Subscription(prefix_subscription(f"{agent_type}:"), agent_type)


def recipients(
    subscriptions: list[Subscription], topic: TopicId, sender: AgentId | None
) -> list[AgentId]:
    """The distinct agents an event reaches locally, never its sender (AWP-SUB-012)."""
    seen: dict[AgentId, None] = {}
    for subscription in subscriptions:
        if subscription.matches(topic):
            agent = subscription.agent_for(topic)
            if agent != sender:
                seen.setdefault(agent, None)
    return list(seen)
