"""Encodings of the cluster's shared state keys and of the messages between nodes.

Shared-state keys are ``<kind>.<name>`` with the variable part in unpadded base64url, since
client-ids and subscription ids may hold characters a key-value key may not.

A message between nodes carries many entries: ``varint(len) sender varint(seq)`` then, repeated,
``varint(len) client_id varint(len) frame``. Each frame is an already-encoded host-to-worker
frame (event, request or response, told apart by its first byte), so a node relays bytes it
received without encoding them again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from typing import Final

from reference_host import _wire

# First bytes of entries that are not host-to-worker data frames (whose first byte is the
# frame's tag, never one of these).
WORKER_LEFT: Final = b"\x00"  # the client left the sending node; nothing follows
# + v1 flag byte + 8-byte big-endian deadline in ms + OpenControlChannelRequest from the client
CONTROL_REQUEST: Final = b"\x01"
CONTROL_TO_CLIENT: Final = b"\x02"  # + OpenControlChannelResponse for the client's control channel

KIND_NODE = "node"
KIND_CLIENT = "cid"
KIND_TYPE = "reg"
KIND_SUBSCRIPTION = "sub"


def key(kind: str, name: str) -> str:
    """Return the shared-state key of ``name`` (any string) in ``kind``."""
    encoded = base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode("ascii")
    return f"{kind}.{encoded or '='}"


def parse_key(raw: str) -> tuple[str, str] | None:
    """Return ``(kind, name)`` of a shared-state key, or None when it is not one of ours."""
    kind, sep, encoded = raw.partition(".")
    if not sep:
        return None
    if encoded == "=":
        return kind, ""
    try:
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return kind, name


def pack(sender: bytes, seq: int, entries: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Encode message number ``seq`` from node ``sender`` with ``(client_id, frame)`` entries."""
    varint = _wire.varint
    parts = [varint(len(sender)), sender, varint(seq)]
    append = parts.append
    for client, frame in entries:
        append(varint(len(client)))
        append(client)
        append(varint(len(frame)))
        append(frame)
    return b"".join(parts)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; return the value and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or oversized varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _chunk(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ValueError("truncated entry")
    return data[pos:end], end


def unpack(data: bytes) -> tuple[str, int, Iterator[tuple[str, bytes]]]:
    """Decode a message; return the sender, its number and an iterator of entries.

    Raises ValueError (possibly while iterating) for bytes that are not such a message.
    """
    sender, pos = _chunk(data, 0)
    seq, pos = read_varint(data, pos)

    def entries() -> Iterator[tuple[str, bytes]]:
        at = pos
        while at < len(data):
            client, at = _chunk(data, at)
            frame, at = _chunk(data, at)
            yield client.decode(), frame

    return sender.decode(), seq, entries()


def frame_payload(frame: bytes) -> bytes:
    """Return the message inside an encoded one-case frame (after its tag and length)."""
    length, pos = read_varint(frame, 1)
    if pos + length != len(frame):
        raise ValueError("frame length does not match")
    return frame[pos:]
