"""The agent registry: agent types, their subscriptions and the instances created so far."""

from __future__ import annotations

import logging
from collections.abc import Callable

from reference_worker._agent import Agent, AgentRuntime, instantiate
from reference_worker._ids import AgentId, TopicId
from reference_worker._subscriptions import Subscription, recipients
from reference_worker.serialization import SerializationRegistry

__all__ = ["AgentFactory", "AgentRegistry"]

_log = logging.getLogger("reference_worker")

AgentFactory = Callable[[], Agent]


class AgentRegistry:
    """What this worker hosts; knows nothing of the host (see _registration)."""

    def __init__(self, serializers: SerializationRegistry) -> None:
        self.serializers = serializers
        self.factories: dict[str, AgentFactory] = {}
        self.subscriptions: list[Subscription] = []
        self._agents: dict[AgentId, Agent] = {}
        self._classes: set[type[Agent]] = set()

    def add_type(self, type_name: str, factory: AgentFactory, cls: type[Agent] | None) -> None:
        if type_name in self.factories:
            raise ValueError(f"agent type {type_name!r} is already registered")
        if cls is None and isinstance(factory, type) and issubclass(factory, Agent):
            cls = factory
        if cls is not None:
            self.learn_types(cls)
        self.factories[type_name] = factory

    def remove_type(self, type_name: str, added: list[Subscription]) -> None:
        """Forgets a type the host refused, so that a reconnect does not retry it."""
        self.factories.pop(type_name, None)
        self.subscriptions = [s for s in self.subscriptions if s not in added]

    def learn_types(self, cls: type[Agent]) -> None:
        """Registers the message and reply classes the handlers of `cls` name."""
        if cls in self._classes:
            return
        self._classes.add(cls)
        for message_type in cls.message_types():
            try:
                self.serializers.add_type(message_type)
            except (TypeError, ValueError):
                _log.debug("not registering %r for serialization", message_type)

    def get(self, agent_id: AgentId, runtime: AgentRuntime) -> Agent:
        """The instance for an AgentId, created on first use (AWP-REG-004).

        Raises LookupError when the type is not registered here.
        """
        agent = self._agents.get(agent_id)
        if agent is None:
            factory = self.factories.get(agent_id.type)
            if factory is None:
                raise LookupError(f"agent type {agent_id.type!r} is not registered here")
            agent = instantiate(factory, runtime, agent_id)
            self.learn_types(type(agent))
            self._agents[agent_id] = agent
        return agent

    def recipients(self, topic: TopicId, sender: AgentId | None) -> list[AgentId]:
        return recipients(self.subscriptions, topic, sender)

    @property
    def agent_ids(self) -> list[AgentId]:
        return list(self._agents)
