"""The console UI agent of the group chat, in its own worker process.

Run (after the writer and editor are up)::

    python examples/group_chat/ui.py --host-address localhost:50051

It posts the user's task on the "group_chat" topic, prints every turn of the conversation in
order, and exits 0 once the editor has approved a draft (1 if that takes over --timeout s).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from common import APPROVED, GROUP_CHAT_TOPIC, GroupChatMessage

from reference_worker import (
    AgentId,
    MessageContext,
    RoutedAgent,
    TypeSubscription,
    message_handler,
)
from reference_worker import Worker as GrpcWorkerAgentRuntime

TASK = "Write a one-sentence story about a lighthouse keeper."
# Subscribers are keyed by the topic source, so the UI agent on the chat topic is this one.
UI_AGENT = AgentId("ui", GROUP_CHAT_TOPIC.source)


class UIAgent(RoutedAgent):
    """Handles the UI: prints the conversation in turn order; sets `done` on approval."""

    def __init__(self, done: asyncio.Event) -> None:
        super().__init__("UI Agent")
        self._done = done
        self._next_turn = 0
        self._waiting: dict[int, GroupChatMessage] = {}

    def show(self, message: GroupChatMessage) -> None:
        self._waiting[message.turn] = message
        while self._next_turn in self._waiting:
            current = self._waiting.pop(self._next_turn)
            print(f"[{current.turn}] {current.source}: {current.content}", flush=True)
            self._next_turn += 1
            if current.content.startswith(APPROVED):
                self._done.set()

    @message_handler
    async def handle_message(self, message: GroupChatMessage, ctx: MessageContext) -> None:
        self.show(message)


async def main(host_address: str, deadline: float) -> int:
    done = asyncio.Event()
    worker = GrpcWorkerAgentRuntime(host_address=host_address)
    await worker.start()
    ui_type = await UIAgent.register(worker, "ui", lambda: UIAgent(done))
    await worker.add_subscription(
        TypeSubscription(topic_type=GROUP_CHAT_TOPIC.type, agent_type=ui_type.type)
    )
    try:
        task = GroupChatMessage(source="user", content=TASK, turn=0)
        agent = await worker.agent(UI_AGENT)
        assert isinstance(agent, UIAgent)
        agent.show(task)
        await worker.publish_message(task, GROUP_CHAT_TOPIC, sender=agent.id)
        async with asyncio.timeout(deadline):
            await done.wait()
        print("conversation complete", flush=True)
        return 0
    except TimeoutError:
        print("the conversation did not finish in time", file=sys.stderr)
        return 1
    finally:
        await worker.stop(grace=2.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="group chat console UI")
    parser.add_argument("--host-address", default="localhost:50051")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.host_address, args.timeout)))
