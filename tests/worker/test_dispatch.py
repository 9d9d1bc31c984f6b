"""Handler selection by type hint, subscriptions and local matching (sections 8 and 10.4)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from agentworker.conformance.v1 import contract_pb2
from agentworker.v1 import agentworker_pb2
from reference_worker import (
    Agent,
    AgentId,
    CancellationToken,
    HandlerFailedError,
    MessageContext,
    SubscriptionSpec,
    TopicId,
    UnknownTargetError,
    UnsupportedMessageError,
    handler,
    prefix_subscription,
    type_subscription,
)
from reference_worker._agent import instantiate
from reference_worker._errors import error_for_code
from reference_worker._subscriptions import Subscription, direct_subscription, recipients


@dataclass
class Question:
    text: str


@dataclass
class Answer:
    text: str


@dataclass
class Shout:
    text: str


@dataclass
class LoudShout(Shout):
    pass


@dataclass
class Ignored:
    pass


def _ctx() -> MessageContext:
    return MessageContext(is_rpc=True, message_id="1", type_name="x", content_type="y")


class Routed(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.created_as = self.id

    @handler
    async def on_question(self, message: Question, ctx: MessageContext) -> Answer:
        return Answer(f"re: {message.text}")

    @handler
    async def on_either(self, message: Shout | contract_pb2.Ping, ctx: MessageContext) -> None:
        return None


class Child(Routed):
    @handler
    async def on_question(self, message: Question, ctx: MessageContext) -> Answer:
        return Answer("child")


class _Runtime:
    async def publish(
        self, message: object, topic: TopicId, *, sender: AgentId | None = None
    ) -> None:
        raise AssertionError("not used")

    async def send(
        self,
        message: object,
        agent_id: AgentId,
        *,
        sender: AgentId | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors the protocol being implemented
        cancellation_token: CancellationToken | None = None,
    ) -> object:
        raise AssertionError("not used")

    async def register(
        self,
        type_name: str,
        factory: Callable[[], Agent],
        *,
        subscriptions: Iterable[SubscriptionSpec] = (),
        agent_class: type[Agent] | None = None,
    ) -> None:
        raise AssertionError("not used")


def _make(cls: type[Agent]) -> Agent:
    return instantiate(cls, _Runtime(), AgentId(cls.__name__.lower(), "k"))


@pytest.mark.asyncio
async def test_handler_is_chosen_by_the_message_type_hint() -> None:
    agent = _make(Routed)
    assert await agent.on_message(Question("q"), _ctx()) == Answer("re: q")
    assert await agent.on_message(Shout("s"), _ctx()) is None
    assert await agent.on_message(contract_pb2.Ping(), _ctx()) is None


@pytest.mark.asyncio
async def test_subclass_of_a_handled_type_routes_to_its_base_handler() -> None:
    agent = _make(Routed)
    assert Routed.accepts(LoudShout)
    assert await agent.on_message(LoudShout("x"), _ctx()) is None


@pytest.mark.asyncio
async def test_overridden_handler_wins() -> None:
    assert await _make(Child).on_message(Question("q"), _ctx()) == Answer("child")


@pytest.mark.asyncio
async def test_unhandled_type_raises_unsupported() -> None:
    agent = _make(Routed)
    assert not Routed.accepts(Ignored)
    with pytest.raises(UnsupportedMessageError) as info:
        await agent.on_message(Ignored(), _ctx())
    assert info.value.code == agentworker_pb2.ERROR_CODE_UNSUPPORTED_MESSAGE


def test_message_types_include_replies() -> None:
    assert {Question, Answer, Shout, contract_pb2.Ping, type(None)} <= set(Routed.message_types())


@pytest.mark.requirement("AWP-REG-004")
def test_factory_sees_its_id_during_construction() -> None:
    agent = _make(Routed)
    assert isinstance(agent, Routed)
    assert agent.created_as == AgentId("routed", "k")


def test_handler_must_be_async_and_typed() -> None:
    with pytest.raises(TypeError):

        @handler  # type: ignore[type-var]
        def not_async(self: object, message: Question, ctx: MessageContext) -> None:
            return None


@pytest.mark.requirement("AWP-SUB-010", "AWP-SUB-003")
def test_type_and_prefix_subscriptions_match_as_specified() -> None:
    exact = Subscription(type_subscription("chat"), "a")
    prefix = Subscription(prefix_subscription("chat."), "b")
    assert exact.matches(TopicId("chat", "s"))
    assert not exact.matches(TopicId("chat.x", "s"))
    assert prefix.matches(TopicId("chat.x", "s"))
    assert not prefix.matches(TopicId("chat", "s"))
    assert exact.agent_for(TopicId("chat", "room")) == AgentId("a", "room")
    proto = prefix.to_proto()
    assert proto.type_prefix_subscription.topic_type_prefix == "chat."
    assert proto.id == prefix.id
    assert uuid.UUID(prefix.id)  # AWP-SUB-003


@pytest.mark.requirement("AWP-SUB-011")
def test_direct_subscription_is_the_type_and_colon_prefix() -> None:
    direct = direct_subscription("writer")
    assert direct.matches(TopicId("writer:inbox", "k"))
    assert not direct.matches(TopicId("writers", "k"))


@pytest.mark.requirement("AWP-SUB-012")
def test_recipients_are_distinct_and_exclude_the_sender() -> None:
    subs = [
        Subscription(type_subscription("chat"), "a"),
        Subscription(prefix_subscription("ch"), "a"),
        Subscription(type_subscription("chat"), "b"),
    ]
    topic = TopicId("chat", "s")
    assert recipients(subs, topic, None) == [AgentId("a", "s"), AgentId("b", "s")]
    assert recipients(subs, topic, AgentId("a", "s")) == [AgentId("b", "s")]


@pytest.mark.requirement("AWP-ERR-003", "AWP-VER-002")
def test_error_codes_map_to_typed_errors() -> None:
    assert isinstance(
        error_for_code(agentworker_pb2.ERROR_CODE_UNKNOWN_TARGET, "x"), UnknownTargetError
    )
    legacy = error_for_code(agentworker_pb2.ERROR_CODE_UNSPECIFIED, "boom")
    assert isinstance(legacy, HandlerFailedError)
    assert legacy.code == agentworker_pb2.ERROR_CODE_HANDLER_FAILED
    assert isinstance(error_for_code(999, "future"), HandlerFailedError)


class Hidden(Routed):
    async def on_question(self, message: Question, ctx: MessageContext) -> Answer:
        return Answer("not a handler")


def test_override_without_handler_hides_the_base_handler() -> None:
    assert not Hidden.accepts(Question)
    assert Hidden.accepts(Shout)
