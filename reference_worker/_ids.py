"""Agent and topic identities."""

from __future__ import annotations

from dataclasses import dataclass

from agentworker.v1 import agentworker_pb2

__all__ = ["DEFAULT_TOPIC_TYPE", "AgentId", "AgentType", "TopicId"]

DEFAULT_TOPIC_TYPE = "default"


@dataclass(frozen=True, slots=True)
class AgentId:
    """Names one agent instance: its type and its key within the type."""

    type: str
    key: str = "default"

    def to_proto(self) -> agentworker_pb2.AgentId:
        return agentworker_pb2.AgentId(type=self.type, key=self.key)

    @classmethod
    def from_proto(cls, message: agentworker_pb2.AgentId) -> AgentId:
        return cls(type=message.type, key=message.key)

    def __str__(self) -> str:
        return f"{self.type}/{self.key}"


@dataclass(frozen=True, slots=True)
class TopicId:
    """Names a topic: what an event is about (type) and its context (source)."""

    type: str
    source: str = "default"

    @classmethod
    def default(cls, source: str = "default") -> TopicId:
        """The topic type "default" that `default_subscription()` subscribes to."""
        return cls(DEFAULT_TOPIC_TYPE, source)

    def __str__(self) -> str:
        return f"{self.type}/{self.source}"


@dataclass(frozen=True, slots=True)
class AgentType:
    """A registered agent type, as `Agent.register` returns it."""

    type: str

    def __str__(self) -> str:
        return self.type
