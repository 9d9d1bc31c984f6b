"""The agent model: a base class whose typed handlers are chosen by message type."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from reference_worker._cancellation import CancellationToken
from reference_worker._context import MessageContext
from reference_worker._errors import UnsupportedMessageError
from reference_worker._ids import AgentId, AgentType, TopicId
from reference_worker._subscriptions import SubscriptionSpec, class_subscriptions

__all__ = [
    "Agent",
    "AgentRuntime",
    "MessageContext",
    "RoutedAgent",
    "handler",
    "message_handler",
]

_HANDLER_MARK = "__agentworker_handler__"
HandlerMethod = Callable[[Any, Any, "MessageContext"], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class AgentRuntime(Protocol):
    """What an agent needs from the worker that hosts it."""

    async def publish(
        self, message: object, topic: TopicId, *, sender: AgentId | None = None
    ) -> None: ...

    async def send(
        self,
        message: object,
        agent_id: AgentId,
        *,
        sender: AgentId | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - public API: a per-call timeout
        cancellation_token: CancellationToken | None = None,
    ) -> Any: ...

    async def register(
        self,
        type_name: str,
        factory: Callable[[], Agent],
        *,
        subscriptions: typing.Iterable[SubscriptionSpec] = (),
        agent_class: type[Agent] | None = None,
    ) -> None: ...


_binding: ContextVar[tuple[AgentRuntime, AgentId] | None] = ContextVar(
    "agentworker_binding", default=None
)


def handler(func: F) -> F:
    """Marks an `async def on_x(self, message: T, ctx: MessageContext)` method as a handler.

    The type hint of the message parameter (a class, or a union of classes) selects which
    messages the method receives; the return hint names the reply type of an RPC.
    """
    if not inspect.iscoroutinefunction(cast(Any, func)):
        raise TypeError(f"handler {func.__qualname__} must be an async def")
    setattr(func, _HANDLER_MARK, True)
    return func


message_handler = handler
"""The AutoGen name of `handler`."""


def _union_members(hint: object) -> list[type]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return [member for arg in typing.get_args(hint) for member in _union_members(arg)]
    if hint is None:
        return [type(None)]
    if isinstance(hint, type):
        return [hint]
    raise TypeError(f"unsupported message type hint {hint!r}")


@dataclass(frozen=True, slots=True)
class _HandlerInfo:
    method: HandlerMethod
    message_types: tuple[type, ...]
    reply_types: tuple[type, ...]


def _describe(func: HandlerMethod) -> _HandlerInfo:
    params = list(inspect.signature(func).parameters)
    if len(params) != 3:
        raise TypeError(f"handler {func.__qualname__} must take (self, message, ctx)")
    hints = typing.get_type_hints(func)
    if params[1] not in hints:
        raise TypeError(f"handler {func.__qualname__} needs a type hint on {params[1]!r}")
    message_types = tuple(_union_members(hints[params[1]]))
    returned = hints.get("return", type(None))
    try:
        reply_types = tuple(_union_members(returned))
    except TypeError:
        reply_types = ()
    return _HandlerInfo(func, message_types, reply_types)


class Agent:
    """Base class of agents. Subclasses define `@handler` methods.

    The worker creates one instance per AgentId on first use (AWP-REG-004); `self.id` and
    `self.worker` are available from `__init__` on when the worker runs the factory.
    """

    __handler_table: typing.ClassVar[dict[type, dict[type, _HandlerInfo]]] = {}

    def __init__(self, description: str = "") -> None:
        self.description = description
        binding = _binding.get()
        self._runtime: AgentRuntime | None = binding[0] if binding else None
        self._id: AgentId | None = binding[1] if binding else None

    # -- identity -----------------------------------------------------------------------------

    @property
    def id(self) -> AgentId:
        if self._id is None:
            raise RuntimeError("agent is not bound to a worker yet")
        return self._id

    @property
    def worker(self) -> AgentRuntime:
        if self._runtime is None:
            raise RuntimeError("agent is not bound to a worker yet")
        return self._runtime

    runtime = worker

    def bind(self, runtime: AgentRuntime, agent_id: AgentId) -> None:
        """Binds the agent to its worker and id (the worker does this after the factory)."""
        self._runtime = runtime
        self._id = agent_id

    # -- messaging ----------------------------------------------------------------------------

    async def publish(self, message: object, topic: TopicId) -> None:
        """Publishes an event with this agent as its sender."""
        await self.worker.publish(message, topic, sender=self.id)

    async def send(
        self,
        message: object,
        agent_id: AgentId,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - public API: a per-call timeout
        cancellation_token: CancellationToken | None = None,
    ) -> Any:
        """Calls another agent and returns its decoded reply (raises AgentWorkerError).

        Without `timeout`, the host's announced default applies (AWP-RPC-012)."""
        return await self.worker.send(
            message,
            agent_id,
            sender=self.id,
            timeout=timeout,
            cancellation_token=cancellation_token,
        )

    async def publish_message(
        self,
        message: object,
        topic_id: TopicId,
        *,
        cancellation_token: CancellationToken | None = None,
    ) -> None:
        """The AutoGen name of `publish`; the token is accepted for compatibility."""
        del cancellation_token  # a publish is queued at once; there is nothing to cancel
        await self.publish(message, topic_id)

    async def send_message(
        self,
        message: object,
        recipient: AgentId,
        *,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - public API: a per-call timeout
    ) -> Any:
        """The AutoGen name of `send`."""
        return await self.send(
            message, recipient, timeout=timeout, cancellation_token=cancellation_token
        )

    @classmethod
    async def register(
        cls,
        runtime: AgentRuntime,
        type: str,
        factory: Callable[[], Agent],
        *,
        skip_class_subscriptions: bool = False,
    ) -> AgentType:
        """Registers `type` on a worker with the subscriptions the class decorators name
        (`@type_subscription(...)`, `@default_subscription`), as AutoGen's `register` does."""
        subscriptions = () if skip_class_subscriptions else class_subscriptions(cls)
        await runtime.register(type, factory, subscriptions=subscriptions, agent_class=cls)
        return AgentType(type)

    # -- state --------------------------------------------------------------------------------

    async def save_state(self) -> Mapping[str, Any]:
        """Returns the agent's state as a JSON-serializable mapping (AWP-CTL-001); the worker
        sends it as a JSON object. Override to support state."""
        raise NotImplementedError(f"{type(self).__name__} does not save state")

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Replaces the agent's state with a mapping `save_state` returned."""
        raise NotImplementedError(f"{type(self).__name__} does not load state")

    # -- dispatch -----------------------------------------------------------------------------

    @classmethod
    def handlers(cls) -> dict[type, _HandlerInfo]:
        """Maps each handled message class to its handler (resolved once per class)."""
        table = Agent.__handler_table.get(cls)
        if table is None:
            table = {}
            seen: set[str] = set()
            for klass in cls.__mro__:
                for name, member in vars(klass).items():
                    # The most derived definition of a name wins; an override without
                    # @handler hides the base class's handler.
                    if name in seen:
                        continue
                    seen.add(name)
                    if not getattr(member, _HANDLER_MARK, False):
                        continue
                    info = _describe(member)
                    for message_type in info.message_types:
                        table.setdefault(message_type, info)
            Agent.__handler_table[cls] = table
        return table

    @classmethod
    def message_types(cls) -> list[type]:
        """Every message and reply class the handlers name (for the serializer registry)."""
        found: dict[type, None] = {}
        for message_type, info in cls.handlers().items():
            found[message_type] = None
            for reply in info.reply_types:
                found[reply] = None
        return list(found)

    @classmethod
    def accepts(cls, message_type: type) -> bool:
        return _find(cls.handlers(), message_type) is not None

    async def on_message(self, message: object, ctx: MessageContext) -> Any:
        """Runs the handler chosen by the message's class; raises UnsupportedMessageError."""
        info = _find(type(self).handlers(), type(message))
        if info is None:
            raise UnsupportedMessageError(
                f"{type(self).__name__} has no handler for {type(message).__name__}"
            )
        return await info.method(self, message, ctx)


def _find(table: dict[type, _HandlerInfo], message_type: type) -> _HandlerInfo | None:
    for klass in message_type.__mro__:
        info = table.get(klass)
        if info is not None:
            return info
    return None


def instantiate(factory: Callable[[], Agent], runtime: AgentRuntime, agent_id: AgentId) -> Agent:
    """Runs an agent factory with the agent's worker and id available to `Agent.__init__`."""
    token = _binding.set((runtime, agent_id))
    try:
        agent = factory()
    finally:
        _binding.reset(token)
    if not isinstance(agent, Agent):
        raise TypeError(f"factory for {agent_id.type!r} returned {type(agent)!r}, not an Agent")
    agent.bind(runtime, agent_id)
    return agent


RoutedAgent = Agent
"""The AutoGen name of `Agent`: handlers are routed by the type of their message."""
