"""Subscriptions: rules mapping topics to agent types, and local topic matching (AWP-SUB-010)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TypeVar, overload

from agentworker.v1 import agentworker_pb2
from reference_worker._ids import DEFAULT_TOPIC_TYPE, AgentId, TopicId

__all__ = [
    "DEFAULT_TOPIC_TYPE",
    "Subscription",
    "SubscriptionSpec",
    "TypePrefixSubscription",
    "TypeSubscription",
    "class_subscriptions",
    "default_subscription",
    "direct_subscription",
    "prefix_subscription",
    "type_subscription",
]

_CLASS_SUBSCRIPTIONS = "__agentworker_subscriptions__"
C = TypeVar("C", bound=type)


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A subscription rule before it is bound to an agent type: exact type or prefix.

    Used as a class decorator (`@type_subscription("chat")`), it adds itself to the
    subscriptions `Agent.register` adds for that class.
    """

    topic: str
    prefix: bool = False

    def __call__(self, cls: C) -> C:
        inherited = class_subscriptions(cls)
        setattr(cls, _CLASS_SUBSCRIPTIONS, (*inherited, self))
        return cls


def class_subscriptions(cls: type) -> tuple[SubscriptionSpec, ...]:
    """The subscriptions the class decorators of `cls` (and its bases) name."""
    found: tuple[SubscriptionSpec, ...] = getattr(cls, _CLASS_SUBSCRIPTIONS, ())
    return found


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


@overload
def default_subscription() -> SubscriptionSpec: ...


@overload
def default_subscription(cls: C) -> C: ...


def default_subscription(cls: C | None = None) -> SubscriptionSpec | C:
    """Matches the topic type "default" (what `DefaultTopicId()` names).

    Bare on a class (`@default_subscription`), it subscribes the class's agent type.
    """
    spec = SubscriptionSpec(DEFAULT_TOPIC_TYPE, prefix=False)
    return spec if cls is None else spec(cls)


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


def TypeSubscription(topic_type: str, agent_type: str) -> Subscription:
    """AutoGen's exact-type subscription, bound to an agent type (for `add_subscription`)."""
    return Subscription(type_subscription(topic_type), agent_type)


def TypePrefixSubscription(topic_type_prefix: str, agent_type: str) -> Subscription:
    """AutoGen's prefix subscription, bound to an agent type (for `add_subscription`)."""
    return Subscription(prefix_subscription(topic_type_prefix), agent_type)


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
