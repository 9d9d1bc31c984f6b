"""The JSON messages AutoGen's side and ours exchange in the interop tests: one definition for
both. AutoGen matches JSON messages by class name and fields, so these names are the wire type
names. Standard library only, so that the AutoGen virtualenv (interop_common.py) and the
project's own (tests/interop/_messages.py) both import this file.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AskProtobuf",
    "CallRequest",
    "CallResult",
    "Fail",
    "Nothing",
    "Ping",
    "Pong",
    "PublishRequest",
    "Published",
    "Rendezvous",
    "Stall",
]


@dataclass
class Ping:
    """Asks for a Pong (RPC) or announces something (event)."""

    text: str
    seq: int = 0


@dataclass
class Pong:
    """Answers a Ping, repeating its text and seq and naming the answering agent's key."""

    text: str
    seq: int = 0
    agent_key: str = ""


@dataclass
class AskProtobuf:
    """Asks a peer agent for a protobuf Pong. (The request itself is JSON: AutoGen labels every
    RPC payload application/json.)"""

    text: str
    seq: int = 0


@dataclass
class Stall:
    """Makes the handler wait `seconds` before answering a Pong (an RPC that stays in flight)."""

    seconds: float
    text: str = ""


@dataclass
class Rendezvous:
    """Makes the handler wait until `parties` Rendezvous calls of the same `group` have reached
    the agent (for at most `timeout` seconds), then answer each with a Pong of its text and seq:
    the calls are then surely in flight together."""

    group: str
    parties: int
    text: str = ""
    seq: int = 0
    timeout: float = 10.0


@dataclass
class Fail:
    """Makes the handler raise an exception whose text is `message`."""

    message: str


@dataclass
class Nothing:
    """Makes the RPC handler return None."""

    text: str = ""


@dataclass
class PublishRequest:
    """Makes the agent publish `count` Pings (seq first_seq, first_seq + 1, ...) on a topic."""

    topic_type: str
    topic_source: str
    count: int = 1
    encoding: str = "json"  # "json" or "protobuf"
    text: str = ""
    first_seq: int = 1


@dataclass
class Published:
    """Answers a PublishRequest."""

    count: int
    encoding: str = "json"


@dataclass
class CallRequest:
    """Makes the agent call `target_type/target_key` with Ping(text, seq)."""

    target_type: str
    target_key: str
    text: str
    seq: int = 0
    timeout: float = 20.0


@dataclass
class CallResult:
    """Answers a CallRequest: the Pong received, or the error the runtime raised."""

    ok: bool
    text: str = ""
    seq: int = 0
    agent_key: str = ""
    reply_type: str = ""
    error: str = ""
