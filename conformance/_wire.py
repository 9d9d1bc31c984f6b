"""Raw wire helpers: method paths, metadata keys, frame codecs and one-line frame descriptions.

These helpers use only the generated stubs; the harness is an implementation of the wire that
shares no code with the reference host or worker.
"""

from __future__ import annotations

from typing import Final, cast

from google.protobuf import text_format
from google.protobuf.message import Message

from agentworker.v1 import agentworker_pb2 as pb

__all__ = [
    "AUTHORIZATION_KEY",
    "CANONICAL_SERVICE",
    "CLIENT_ID_KEY",
    "CONTROL_TIMEOUT_KEY",
    "HELLO_KEY",
    "LEGACY_SERVICE",
    "WELCOME_KEY",
    "all_capabilities",
    "describe",
    "encode",
    "method_path",
    "unknown_case_frame",
]

CANONICAL_SERVICE: Final = "agentworker.v1.AgentRpcService"
LEGACY_SERVICE: Final = "agents.AgentRpc"
CLIENT_ID_KEY: Final = "client-id"
AUTHORIZATION_KEY: Final = "authorization"
HELLO_KEY: Final = "agentworker-hello-bin"
WELCOME_KEY: Final = "agentworker-welcome-bin"
CONTROL_TIMEOUT_KEY: Final = "agentworker-control-timeout-ms"


def method_path(method: str, *, legacy: bool) -> str:
    """Return the gRPC method path of ``method`` on the canonical or the legacy service."""
    return f"/{LEGACY_SERVICE if legacy else CANONICAL_SERVICE}/{method}"


def encode(frame: Message | bytes) -> bytes:
    """Serialize a message; raw bytes pass through unchanged (for deliberately odd frames)."""
    if isinstance(frame, bytes):
        return frame
    return frame.SerializeToString()


def unknown_case_frame(field_number: int = 99) -> bytes:
    """Return the bytes of an OpenChannelRequest whose only field is an unknown, empty,
    length-delimited field: a frame with no known oneof case (AWP-CONN-012)."""
    tag = (field_number << 3) | 2
    out = bytearray()
    while True:
        byte = tag & 0x7F
        tag >>= 7
        if tag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    out.append(0)  # length 0
    return bytes(out)


def all_capabilities() -> list[pb.Capability]:
    """Return every capability value except CAPABILITY_UNSPECIFIED."""
    numbers = [v.number for v in pb.Capability.DESCRIPTOR.values if v.number != 0]
    return cast("list[pb.Capability]", numbers)


def describe(frame: Message | bytes, limit: int = 400) -> str:
    """Describe a message on one line (text format), truncated to ``limit`` characters."""
    if isinstance(frame, bytes):
        text = f"<raw bytes {frame.hex()}>"
    else:
        text = f"{type(frame).__name__}{{{text_format.MessageToString(frame, as_one_line=True)}}}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
