"""The CloudEvent envelope of a published message (spec section 9.1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from google.protobuf import any_pb2

from agentworker.cloudevents.v1 import cloudevents_pb2
from reference_worker._ids import AgentId, TopicId
from reference_worker._trace import TraceContext
from reference_worker.serialization import (
    JSON,
    PROTOBUF,
    SerializationError,
    SerializationRegistry,
    SerializedMessage,
)

__all__ = ["ReceivedEvent", "build_cloud_event", "parse_cloud_event"]

CloudEvent = cloudevents_pb2.CloudEvent
_Attr = cloudevents_pb2.CloudEvent.CloudEventAttributeValue

DATA_CONTENT_TYPE = "datacontenttype"
DATA_SCHEMA = "dataschema"
SENDER_TYPE = "agagentsendertype"
SENDER_KEY = "agagentsenderkey"
MESSAGE_KIND = "agmsgkind"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"


def build_cloud_event(
    message: SerializedMessage,
    topic: TopicId,
    sender: AgentId | None = None,
    trace: TraceContext | None = None,
) -> cloudevents_pb2.CloudEvent:
    """Builds the envelope of AWP-PUB-001 for an encoded message."""
    attributes = {
        DATA_CONTENT_TYPE: _Attr(ce_string=message.content_type),
        DATA_SCHEMA: _Attr(ce_string=message.type_name),
        MESSAGE_KIND: _Attr(ce_string="publish"),
    }
    if sender is not None:
        attributes[SENDER_TYPE] = _Attr(ce_string=sender.type)
        attributes[SENDER_KEY] = _Attr(ce_string=sender.key)
    if trace is not None:
        for name, value in trace.items().items():
            attributes[name] = _Attr(ce_string=value)
    event = CloudEvent(
        id=str(uuid.uuid4()),
        source=topic.source,
        spec_version="1.0",
        type=topic.type,
        attributes=attributes,
    )
    if message.content_type == PROTOBUF:
        envelope = any_pb2.Any()
        envelope.ParseFromString(message.data)
        event.proto_data.CopyFrom(envelope)
    else:
        event.binary_data = message.data
    return event


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A decoded event with the envelope facts a handler may want."""

    event_id: str
    topic: TopicId
    type_name: str
    content_type: str
    message: object
    sender: AgentId | None
    traceparent: str
    tracestate: str


def _string(event: cloudevents_pb2.CloudEvent, name: str) -> str:
    value = event.attributes.get(name)
    if value is None:
        return ""
    kind = value.WhichOneof("attr")
    if kind in ("ce_string", "ce_uri", "ce_uri_ref"):
        return str(getattr(value, kind))
    if kind == "ce_bytes":
        return value.ce_bytes.decode("utf-8", errors="replace")
    if kind in ("ce_boolean", "ce_integer"):
        return str(getattr(value, kind))
    return ""


def event_sender(event: cloudevents_pb2.CloudEvent) -> AgentId | None:
    sender_type = _string(event, SENDER_TYPE)
    if not sender_type:
        return None
    return AgentId(sender_type, _string(event, SENDER_KEY))


def parse_cloud_event(
    event: cloudevents_pb2.CloudEvent, registry: SerializationRegistry
) -> ReceivedEvent:
    """Decodes an event by datacontenttype and dataschema (AWP-PUB-022).

    Raises UnknownMessageTypeError or SerializationError when it cannot.
    """
    data_case = event.WhichOneof("data")
    content_type = _string(event, DATA_CONTENT_TYPE)
    type_name = _string(event, DATA_SCHEMA)
    if not content_type:
        content_type = PROTOBUF if data_case == "proto_data" else JSON
    if data_case == "proto_data":
        if not type_name:
            type_name = event.proto_data.type_url.rsplit("/", 1)[-1]
        message = registry.deserialize_any(event.proto_data)
    elif data_case in ("binary_data", "text_data"):
        data = event.binary_data if data_case == "binary_data" else event.text_data.encode()
        message = registry.deserialize(type_name, content_type, data)
    else:
        raise SerializationError(f"event {event.id} carries no data")
    return ReceivedEvent(
        event_id=event.id,
        topic=TopicId(event.type, event.source),
        type_name=type_name,
        content_type=content_type,
        message=message,
        sender=event_sender(event),
        traceparent=_string(event, TRACEPARENT),
        tracestate=_string(event, TRACESTATE),
    )
