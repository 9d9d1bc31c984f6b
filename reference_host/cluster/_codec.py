"""Encodings of the cluster's shared state keys and of the messages between nodes.

Shared-state keys are ``<kind>.<name>`` with the variable part in unpadded base64url, since
client-ids and subscription ids may hold characters a key-value key may not.

A message between nodes carries many entries: ``varint(len) sender varint(seq) varint(ack)``, where
``ack`` is the highest number of the receiver's own messages the sender has processed (0 for
none: acknowledgements ride on traffic going the other way), then, repeated,
``u32 len(frame) u16 count`` followed by ``count`` times ``u16 len(client_id) client_id``, then
the frame (big-endian integers: one C call decodes each header). A count of 0 names the clients
of the entry before: a burst of frames for one worker names it once. A frame is an already-encoded
host-to-worker frame (an event or a response, told apart by its first byte) or one of the
entries below, and goes to every client the entry names: an event for several workers on one
node crosses once (AWP-CLU-025). The receiving node relays the bytes it received without
encoding them again: a request travels as a ``CALL`` entry, its routing header beside the
frame; a response's host id is read from the frame's first field (AWP-CLU-026).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterator, Sequence
from typing import Final

from reference_host import _wire

# First bytes of entries that are not host-to-worker data frames (whose first byte is the
# frame's tag, never one of these).
WORKER_LEFT: Final = b"\x00"  # the client left the sending node; nothing follows
# + v1 flag byte + 8-byte big-endian deadline in ms + OpenControlChannelRequest from the client
CONTROL_REQUEST: Final = b"\x01"
CONTROL_TO_CLIENT: Final = b"\x02"  # + OpenControlChannelResponse for the client's control channel
# + call header + the request frame, whose request_id is the sending node's host id.
CALL: Final = b"\x03"

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


_ENTRY: Final = struct.Struct(">IH")
_CLIENT: Final = struct.Struct(">H")
_ONE_CLIENT: Final = struct.Struct(">IHH")
# Longest client-id an entry can name (gRPC metadata values are far shorter).
MAX_CLIENT_BYTES: Final = 0xFFFF

Entry = tuple[Sequence[bytes], bytes]


def pack(sender: bytes, seq: int, ack: int, entries: Sequence[Entry]) -> bytes:
    """Encode message number ``seq`` from node ``sender``, acknowledging the receiver's messages
    up to number ``ack``, with ``(client_ids, frame)`` entries."""
    varint = _wire.varint
    parts = [varint(len(sender)), sender, varint(seq), varint(ack)]
    append = parts.append
    entry_header = _ENTRY.pack
    client_header = _CLIENT.pack
    one_client = _ONE_CLIENT.pack
    previous: bytes | None = None
    for clients, frame in entries:
        if len(clients) == 1:
            client = clients[0]
            if client == previous:
                append(entry_header(len(frame), 0))
            else:
                append(one_client(len(frame), 1, len(client)))
                append(client)
                previous = client
        else:
            append(entry_header(len(frame), len(clients)))
            for client in clients:
                append(client_header(len(client)))
                append(client)
            previous = None
        append(frame)
    return b"".join(parts)


_CALL_HEADER: Final = struct.Struct(">QH")


def call(frame: bytes, host_id: str, timeout_ms: int) -> bytes:
    """Return the entry frame of a request: the routing header the receiving node needs (host
    id, timeout) before the request frame, which it forwards as it is."""
    host = host_id.encode()
    return b"".join((CALL, _CALL_HEADER.pack(timeout_ms, len(host)), host, frame))


def parse_call(data: bytes) -> tuple[str, int, bytes]:
    """Return ``(host_id, timeout_ms, request frame)`` of a ``call`` entry."""
    try:
        timeout_ms, host_length = _CALL_HEADER.unpack_from(data, 1)
    except struct.error as exc:
        raise ValueError(f"truncated call header: {exc}") from exc
    at = 1 + _CALL_HEADER.size
    frame_at = at + host_length
    if frame_at >= len(data):
        raise ValueError("truncated call")
    return data[at:frame_at].decode(), timeout_ms, data[frame_at:]


def response_id(frame: bytes) -> tuple[str, int] | None:
    """Return the request id of an encoded response frame and where the payload goes on after
    it, when it is the payload's first field (as this host encodes responses), else None."""
    size = len(frame)
    if size > 2 and frame[1] < 0x80:
        length, pos = frame[1], 2
    else:
        length, pos = _wire.read_varint(frame, 1)
    if pos + length != size or pos + 2 >= size or frame[pos] != 0x0A:
        return None
    id_length = frame[pos + 1]
    at = pos + 2
    if id_length >= 0x80:
        id_length, at = _wire.read_varint(frame, pos + 1)
    end = at + id_length
    if end > size:
        return None
    return frame[at:end].decode(), end


def _chunk(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = _wire.read_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ValueError("truncated entry")
    return data[pos:end], end


def unpack(data: bytes) -> tuple[str, int, int, Iterator[tuple[list[str], bytes]]]:
    """Decode a message; return the sender, its number, the number it acknowledges and an
    iterator of entries.

    Raises ValueError (possibly while iterating) for bytes that are not such a message.
    """
    sender, pos = _chunk(data, 0)
    seq, pos = _wire.read_varint(data, pos)
    ack, pos = _wire.read_varint(data, pos)

    def entries() -> Iterator[tuple[list[str], bytes]]:
        one_client = _ONE_CLIENT.unpack_from
        client_header = _CLIENT.unpack_from
        at = pos
        size = len(data)
        # The clients of the entry before: an entry with a count of 0 names them again, and
        # gets the same list, so a reader may keep what it looked up for them.
        clients: list[str] | None = None
        try:
            while at < size:
                if size - at >= 8:
                    length, count, client_length = one_client(data, at)
                else:
                    length, count = _ENTRY.unpack_from(data, at)
                    client_length = 0
                if count == 1:
                    # One client (the usual case): one header read.
                    at += 8
                    clients = [data[at : at + client_length].decode()]
                    at += client_length
                elif count == 0:
                    at += 6
                    if clients is None:
                        raise ValueError("the first entry names no client")
                else:
                    at += 6
                    clients = []
                    for _ in range(count):
                        (client_length,) = client_header(data, at)
                        at += 2
                        clients.append(data[at : at + client_length].decode())
                        at += client_length
                end = at + length
                if end > size:
                    raise ValueError("truncated entry")
                yield clients, data[at:end]
                at = end
        except struct.error as exc:
            raise ValueError(f"truncated entry header: {exc}") from exc

    return sender.decode(), seq, ack, entries()
