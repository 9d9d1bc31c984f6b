"""Encoding and decoding of the conformance contract's messages as RPC payloads and CloudEvent
data, in both encodings of spec 9.2 (AWP-PUB-020, AWP-PUB-021, AWP-CNF-004)."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb

__all__ = [
    "JSON",
    "PROTOBUF",
    "attribute",
    "decode_payload",
    "enum_name",
    "json_ping_payload",
    "ping_event",
    "proto_payload",
    "unpack_any",
]

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
TYPE_PREFIX = "type.googleapis.com/"

MessageT = TypeVar("MessageT", bound=Message)


def pack(message: Message) -> any_pb2.Any:
    """Return ``message`` in an Any with the standard type URL."""
    packed = any_pb2.Any(
        type_url=TYPE_PREFIX + message.DESCRIPTOR.full_name, value=message.SerializeToString()
    )
    return packed


def proto_payload(message: Message) -> pb.Payload:
    """Return the protobuf encoding of ``message`` as an RPC payload (a serialized Any)."""
    return pb.Payload(
        data_type=message.DESCRIPTOR.full_name,
        data_content_type=PROTOBUF,
        data=pack(message).SerializeToString(),
    )


def json_ping_payload(text: str, seq: int) -> pb.Payload:
    """Return the JSON encoding of a Ping as an RPC payload."""
    return pb.Payload(
        data_type="Ping",
        data_content_type=JSON,
        data=json.dumps({"text": text, "seq": seq}).encode(),
    )


def unpack_any(packed: any_pb2.Any, kind: type[MessageT]) -> MessageT | None:
    """Return the Any's message if its type URL names ``kind``, else None."""
    if packed.type_url != TYPE_PREFIX + kind.DESCRIPTOR.full_name:
        return None
    try:
        return kind.FromString(packed.value)
    except DecodeError:
        return None


def decode_payload(payload: pb.Payload, kind: type[MessageT]) -> tuple[MessageT | None, str]:
    """Decode a payload holding ``kind`` in either encoding; return the message (None when it
    is not one) and a description of the problem."""
    if payload.data_content_type == PROTOBUF:
        if payload.data_type != kind.DESCRIPTOR.full_name:
            return None, f"protobuf data_type {payload.data_type!r}"
        try:
            packed = any_pb2.Any.FromString(payload.data)
        except DecodeError:
            return None, "Payload.data is not a serialized Any"
        message = unpack_any(packed, kind)
        if message is None:
            return (
                None,
                f"Any type_url {packed.type_url!r} does not name {kind.DESCRIPTOR.full_name}",
            )
        return message, ""
    if payload.data_content_type == JSON:
        short = kind.DESCRIPTOR.name
        if payload.data_type != short:
            return None, f"JSON data_type {payload.data_type!r}, expected {short!r}"
        try:
            value: Any = json.loads(payload.data)
        except ValueError:
            return None, "JSON data does not parse"
        if not isinstance(value, dict):
            return None, "JSON data is not an object"
        message = kind()
        for name in kind.DESCRIPTOR.fields_by_name:
            if value.get(name) is None:
                continue  # absent, or null: the field's default (protobuf's JSON mapping)
            with_value: Any = value[name]
            if isinstance(with_value, float) and with_value.is_integer():
                with_value = int(with_value)  # 7.0 is the integer 7 (AWP-CNF-024)
            try:
                if isinstance(with_value, bool) or not isinstance(with_value, (str, int)):
                    raise TypeError(name)
                setattr(message, name, with_value)
            except (TypeError, ValueError):
                return None, f"JSON field {name!r} has the wrong type or is out of range"
        return message, ""
    return None, f"content type {payload.data_content_type!r}"


def enum_name(enum: Any, value: int) -> str:
    """Return the name of an enum value, or the number when it is unknown (a future value)."""
    return str(enum.Name(value)) if value in enum.values() else str(value)


def attribute(event: ce.CloudEvent, name: str) -> str | None:
    """Return a ce_string attribute, or None when absent or of another type."""
    if name not in event.attributes:
        return None
    value = event.attributes[name]
    if value.WhichOneof("attr") != "ce_string":
        return None
    return str(value.ce_string)


def ping_event(
    topic_type: str,
    source: str,
    text: str,
    seq: int,
    *,
    protobuf: bool,
    extra: dict[str, str] | None = None,
) -> ce.CloudEvent:
    """Return a Ping event as a publishing agent `harness/sender` would send it."""
    event = ce.CloudEvent(id=str(uuid.uuid4()), source=source, spec_version="1.0", type=topic_type)
    if protobuf:
        event.proto_data.CopyFrom(pack(cp.Ping(text=text, seq=seq)))
        content, schema = PROTOBUF, cp.Ping.DESCRIPTOR.full_name
    else:
        event.binary_data = json.dumps({"text": text, "seq": seq}).encode()
        content, schema = JSON, "Ping"
    for key, value in (
        ("datacontenttype", content),
        ("dataschema", schema),
        ("agagentsendertype", "harness"),
        ("agagentsenderkey", "sender"),
        ("agmsgkind", "publish"),
        *(extra or {}).items(),
    ):
        event.attributes[key].ce_string = value
    return event
