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

from reference_worker import Agent, MessageContext, Worker, handler, type_subscription


class Participant(Agent):
    """Keeps the conversation history and speaks when it is its turn."""

    def __init__(self, role: str, model: ChatModel, rounds: int) -> None:
        super().__init__()
        self._role = role
        self._model = model
        self._rounds = rounds
        self._history: list[GroupChatMessage] = []

    @handler
    async def on_chat(self, message: GroupChatMessage, ctx: MessageContext) -> None:
        self._history.append(message)
        if message.content.startswith(APPROVED):
            return
        if self._role == "writer" and message.source in ("user", "editor"):
            content = await self._model.complete(WRITER_SYSTEM_MESSAGE, self._history)
        elif self._role == "editor" and message.source == "writer":
            drafts = sum(1 for m in self._history if m.source == "writer")
            if drafts >= self._rounds:
                content = f"{APPROVED}: this sentence is ready to publish."
            else:
                content = await self._model.complete(EDITOR_SYSTEM_MESSAGE, self._history)
        else:
            return
        reply = GroupChatMessage(source=self._role, content=content, turn=message.turn + 1)
        self._history.append(reply)
        await self.publish(reply, GROUP_CHAT_TOPIC)


async def main(host_address: str, role: str, rounds: int) -> int:
    worker = Worker(host_address)
    await worker.register(
        role,
        lambda: Participant(role, ScriptedChatModel(), rounds),
        subscriptions=[type_subscription(GROUP_CHAT_TOPIC.type)],
    )
    await worker.start()
    print("ready", flush=True)
    await worker.stop_when_signal(grace=5.0)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="group chat writer or editor")
    parser.add_argument("--host-address", default="localhost:50051")
    parser.add_argument("--role", choices=("writer", "editor"), required=True)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.host_address, args.role, args.rounds)))
