"""A group chat participant (writer or editor) in its own worker process.

Run (with a host listening on localhost:50051)::

    python examples/group_chat/agent.py --host-address localhost:50051 --role writer
    python examples/group_chat/agent.py --host-address localhost:50051 --role editor

The writer answers the task and each piece of editor feedback with a new one-sentence draft;
the editor reviews each draft and, after --rounds drafts, approves the last one. Both use a
deterministic ChatModel, so no model service or network is needed. The process prints
``ready`` once registered and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from common import (
    APPROVED,
    DEFAULT_ROUNDS,
    EDITOR_SYSTEM_MESSAGE,
    GROUP_CHAT_TOPIC,
    WRITER_SYSTEM_MESSAGE,
    ChatModel,
    GroupChatMessage,
    ScriptedChatModel,
)

from reference_worker import (
    DefaultTopicId,
    MessageContext,
    RoutedAgent,
    TypeSubscription,
    message_handler,
)
from reference_worker import Worker as GrpcWorkerAgentRuntime


class AssistantAgentWrapper(RoutedAgent):
    """The seed's wrapper: keeps the history and asks its model when it is its turn."""

    def __init__(
        self,
        description: str,
        group_chat_topic_type: str,
        agent: ChatModel,
        role: str,
        rounds: int,
    ) -> None:
        super().__init__(description=description)
        self._group_chat_topic_type = group_chat_topic_type
        self._agent = agent
        self._role = role
        self._rounds = rounds
        self._chat_history: list[GroupChatMessage] = []

    @message_handler
    async def handle_message(self, message: GroupChatMessage, ctx: MessageContext) -> None:
        self._chat_history.append(message)
        if message.content.startswith(APPROVED):
            return
        if self._role == "writer" and message.source in ("user", "editor"):
            content = await self._agent.complete(self.description, self._chat_history)
        elif self._role == "editor" and message.source == "writer":
            drafts = sum(1 for m in self._chat_history if m.source == "writer")
            if drafts >= self._rounds:
                content = f"{APPROVED}: this sentence is ready to publish."
            else:
                content = await self._agent.complete(self.description, self._chat_history)
        else:
            return
        reply = GroupChatMessage(source=self._role, content=content, turn=message.turn + 1)
        self._chat_history.append(reply)
        await self.publish_message(
            reply,
            topic_id=DefaultTopicId(type=self._group_chat_topic_type),
        )


async def main(host_address: str, role: str, rounds: int) -> int:
    agent_system_message = WRITER_SYSTEM_MESSAGE if role == "writer" else EDITOR_SYSTEM_MESSAGE
    agent_runtime = GrpcWorkerAgentRuntime(host_address=host_address)
    await agent_runtime.start()
    agent_type = await AssistantAgentWrapper.register(
        agent_runtime,
        role,
        lambda: AssistantAgentWrapper(
            description=agent_system_message,
            group_chat_topic_type=GROUP_CHAT_TOPIC.type,
            agent=ScriptedChatModel(),
            role=role,
            rounds=rounds,
        ),
    )
    # Register the agent to the group chat topic so that it receives its messages.
    await agent_runtime.add_subscription(
        TypeSubscription(topic_type=GROUP_CHAT_TOPIC.type, agent_type=agent_type.type)
    )
    print("ready", flush=True)
    await agent_runtime.stop_when_signal(grace=5.0)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="group chat writer or editor")
    parser.add_argument("--host-address", default="localhost:50051")
    parser.add_argument("--role", choices=("writer", "editor"), required=True)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.host_address, args.role, args.rounds)))
