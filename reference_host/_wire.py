"""Hand-built protobuf framing for host-to-worker data frames.

The host serializes each outbound frame once, as bytes, and hands the bytes to gRPC. An event
delivered to several workers is therefore encoded once, and a Batch frame is the concatenation of
already-encoded frames, with no copying of messages. The encodings below are exactly what
``OpenChannelResponse.SerializeToString()`` produces for a frame with one oneof case set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

# Tags of OpenChannelResponse's oneof cases: (field number << 3) | wire type 2 (LEN).
TAG_REQUEST: Final = b"\x0a"  # field 1
TAG_RESPONSE: Final = b"\x12"  # field 2
TAG_CLOUD_EVENT: Final = b"\x1a"  # field 3
TAG_BATCH: Final = b"\x52"  # field 10
TAG_NOTICE: Final = b"\x5a"  # field 11
# Tag of OpenChannelResponse.Batch.messages (field 1, LEN).
_TAG_BATCH_MESSAGE: Final = b"\x0a"

_SMALL_VARINTS: Final = tuple(bytes((i,)) for i in range(128))


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf base-128 varint."""
    if value < 0x80:
        return _SMALL_VARINTS[value]
    if value < 0x4000:
        # Two bytes: most frames are 128 B to 16 KiB, so this is the common case.
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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


def frame_payload(frame: bytes) -> bytes:
    """Return the message inside an encoded one-case frame (after its tag and length)."""
    length, pos = read_varint(frame, 1)
    if pos + length != len(frame):
        raise ValueError("frame length does not match")
    return frame[pos:]


def frame(tag: bytes, payload: bytes) -> bytes:
    """Encode one frame whose oneof case ``tag`` holds the serialized message ``payload``."""
    return tag + varint(len(payload)) + payload


def batch_overhead(frame_size: int) -> int:
    """Return how many bytes a frame of ``frame_size`` bytes takes inside a Batch frame."""
    if frame_size < 0x80:
        return frame_size + 2
    if frame_size < 0x4000:
        return frame_size + 3
    return 1 + len(varint(frame_size)) + frame_size


def batch(frames: Sequence[bytes]) -> bytes:
    """Encode an OpenChannelResponse whose Batch case holds ``frames`` in order."""
    parts: list[bytes] = []
    append = parts.append
    for item in frames:
        append(_TAG_BATCH_MESSAGE + varint(len(item)))
        append(item)
    inner = b"".join(parts)
    return TAG_BATCH + varint(len(inner)) + inner


# Tag byte of each host-to-worker frame case, and the kind it is counted as.
_KINDS: Final = {
    TAG_REQUEST[0]: "request",
    TAG_RESPONSE[0]: "response",
    TAG_CLOUD_EVENT[0]: "event",
    TAG_BATCH[0]: "batch",
    TAG_NOTICE[0]: "notice",
}
# Tags of RpcResponse fields: request_id (1, LEN), error (3, LEN), error_code (5, VARINT).
_TAG_RESPONSE_REQUEST_ID: Final = b"\x0a"
_TAG_RESPONSE_ERROR: Final = b"\x1a"
_TAG_RESPONSE_ERROR_CODE: Final = b"\x28"


def kind_of(data: bytes) -> str:
    """Return the kind of an encoded host-to-worker frame (event, request, response, ...)."""
    return _KINDS.get(data[0], "other") if data else "other"


def _string_field(tag: bytes, value: str) -> bytes:
    if not value:
        return b""
    raw = value.encode("utf-8")
    return tag + varint(len(raw)) + raw


def error_response(request_id: str, code: int, text: str) -> bytes:
    """Encode a response frame carrying an error: what ``RpcResponse(request_id=...,
    error=..., error_code=...)`` serializes to, wrapped as a data-channel frame."""
    body = _string_field(_TAG_RESPONSE_REQUEST_ID, request_id) + _string_field(
        _TAG_RESPONSE_ERROR, text
    )
    if code:
        body += _TAG_RESPONSE_ERROR_CODE + varint(code)
    return frame(TAG_RESPONSE, body)
