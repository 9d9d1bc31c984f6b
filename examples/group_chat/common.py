"""Shared pieces of the group chat: the message type, the topic and the chat model."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE_PATHS = [str(ROOT), str(ROOT / "gen" / "python")]


def ensure_importable() -> None:
    """Lets the scripts run from a source checkout without installing the project."""
    sys.path[:0] = [path for path in SOURCE_PATHS if path not in sys.path]


ensure_importable()

from reference_worker import TopicId  # noqa: E402 - after the source-checkout path setup

GROUP_CHAT_TOPIC = TopicId("conversation_topic", "default")
APPROVED = "APPROVED"
DEFAULT_ROUNDS = 3

WRITER_SYSTEM_MESSAGE = "You are a one sentence Writer and provide one sentence content each time."
EDITOR_SYSTEM_MESSAGE = "You are an Editor. You just provide feedback on the message you receive."


@dataclass
class GroupChatMessage:
    """One turn of the conversation; `turn` numbers the turns from 0 (the user's task)."""

    source: str
    content: str
    turn: int


class ChatModel(Protocol):
    """What an agent asks for its next message: given its instructions and the history."""

    async def complete(self, system_message: str, history: Sequence[GroupChatMessage]) -> str: ...


class ScriptedChatModel:
    """A deterministic stand-in for a language model: no network, same answers every run."""

    _DRAFTS = (
        "The lighthouse keeper lit the lamp each night for ships that never came.",
        "Each night the keeper lit the lamp, until one stormy dawn a lost ship finally came home.",
        "Night after night the old keeper lit the lamp, and one stormy dawn it led a lost ship "
        "safely home.",
    )
    _FEEDBACK = (
        "Give the sentence a turning point so the reader feels a change.",
        "Good turn; tighten the rhythm and make the keeper's age felt.",
    )

    async def complete(self, system_message: str, history: Sequence[GroupChatMessage]) -> str:
        round_index = sum(1 for message in history if message.source == "editor")
        if "Writer" in system_message:
            return self._DRAFTS[min(round_index, len(self._DRAFTS) - 1)]
        drafts = sum(1 for message in history if message.source == "writer")
        return self._FEEDBACK[min(drafts - 1, len(self._FEEDBACK) - 1)]
