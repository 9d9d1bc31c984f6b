"""Pre-encoded data-channel frames for the load clients.

The load clients send bytes, not messages: each frame is assembled from parts encoded once, so
that the clients spend as little CPU as possible per frame and the host stays the bottleneck.
A worker-to-host frame (OpenChannelRequest) and a host-to-worker frame (OpenChannelResponse)
use the same field numbers for ``request`` (1), ``response`` (2), ``cloud_event`` (3) and
``batch`` (10), so one encoder serves both directions. Every encoder here produces exactly what
the generated classes' ``SerializeToString()`` produces (checked in tests/bench).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb

# Tags: (field number << 3) | 2 (length-delimited).
TAG_REQUEST: Final = b"\x0a"  # OpenChannelRequest.request = 1
TAG_RESPONSE: Final = b"\x12"  # OpenChannelRequest.response = 2
TAG_CLOUD_EVENT: Final = b"\x1a"  # OpenChannelRequest.cloud_event = 3
TAG_BATCH: Final = b"\x52"  # OpenChannelRequest.batch = 10
TAG_BATCH_ITEM: Final = b"\x0a"  # Batch.messages = 1
TAG_ID: Final = b"\x0a"  # RpcRequest.request_id = 1, RpcResponse.request_id = 1, CloudEvent.id = 1

_SMALL: Final = tuple(bytes((i,)) for i in range(128))


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf varint."""
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """Encode a length-delimited field."""
    return tag + varint(len(payload)) + payload


def batch(frames: Sequence[bytes]) -> bytes:
    """Encode a Batch frame holding the already-encoded ``frames`` in order."""
    inner = b"".join([TAG_BATCH_ITEM + varint(len(item)) + item for item in frames])
    return TAG_BATCH + varint(len(inner)) + inner


def payload_bytes(size: int) -> bytes:
    """Return a JSON document of about ``size`` bytes."""
    filler = "x" * max(0, size - 10)
    return f'{{"p": "{filler}"}}'.encode()


class RequestEncoder:
    """Builds ``request`` frames to one target; only the request id changes per frame."""

    __slots__ = ("_tail",)

    def __init__(self, target_type: str, target_key: str, payload_size: int) -> None:
        # Fields after request_id (field order does not matter to a decoder; serializing puts
        # request_id first, so this matches SerializeToString byte for byte).
        tail = pb.RpcRequest(
            source=pb.AgentId(type="bench_caller", key="k"),
            target=pb.AgentId(type=target_type, key=target_key),
            method="ping",
            payload=pb.Payload(
                data_type="Ping",
                data_content_type="application/json",
                data=payload_bytes(payload_size),
            ),
        )
        self._tail = tail.SerializeToString()

    def frame(self, request_id: str) -> bytes:
        """Return the request frame with ``request_id``."""
        body = field(TAG_ID, request_id.encode()) + self._tail
        return TAG_REQUEST + varint(len(body)) + body


class ResponseEncoder:
    """Builds ``response`` frames with a fixed successful payload."""

    __slots__ = ("_tail",)

    def __init__(self, payload_size: int) -> None:
        tail = pb.RpcResponse(
            payload=pb.Payload(
                data_type="Pong",
                data_content_type="application/json",
                data=payload_bytes(payload_size),
            )
        )
        self._tail = tail.SerializeToString()

    def frame(self, request_id: str) -> bytes:
        """Return the response frame answering ``request_id``."""
        body = field(TAG_ID, request_id.encode()) + self._tail
        return TAG_RESPONSE + varint(len(body)) + body


class EventEncoder:
    """Builds ``cloud_event`` frames on one topic; only the event id changes per frame."""

    __slots__ = ("_tail",)

    def __init__(self, topic_type: str, topic_source: str, payload_size: int) -> None:
        # The attributes AutoGen's workers set on a JSON publish (NOTES.md section 2).
        attributes = {
            "datacontenttype": "application/json",
            "dataschema": "Ping",
            "agagentsendertype": "bench_publisher",
            "agagentsenderkey": "k",
            "agmsgkind": "publish",
        }
        tail = ce.CloudEvent(
            source=topic_source,
            spec_version="1.0",
            type=topic_type,
            attributes={
                name: ce.CloudEvent.CloudEventAttributeValue(ce_string=value)
                for name, value in attributes.items()
            },
            binary_data=payload_bytes(payload_size),
        )
        self._tail = tail.SerializeToString(deterministic=True)

    def frame(self, event_id: str) -> bytes:
        """Return the event frame with ``event_id``."""
        body = field(TAG_ID, event_id.encode()) + self._tail
        return TAG_CLOUD_EVENT + varint(len(body)) + body
