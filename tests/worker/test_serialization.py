"""Serialization registry and the CloudEvent mapping (spec sections 9.1 and 9.2)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from google.protobuf import any_pb2

from agentworker.cloudevents.v1 import cloudevents_pb2
from agentworker.conformance.v1 import contract_pb2
from reference_worker import AgentId, TopicId, TraceContext
from reference_worker._cloudevent import build_cloud_event, parse_cloud_event
from reference_worker.serialization import (
    JSON,
    PROTOBUF,
    DataclassJsonSerializer,
    SerializationError,
    SerializationRegistry,
    UnknownMessageTypeError,
)


@dataclass
class Greeting:
    text: str
    count: int = 0


class NotAMessage:
    pass


def test_dataclass_round_trips_as_json_under_its_class_name() -> None:
    registry = SerializationRegistry()
    registry.add_type(Greeting)
    encoded = registry.serialize(Greeting("hi", 3))
    assert encoded.type_name == "Greeting"
    assert encoded.content_type == JSON
    assert json.loads(encoded.data) == {"text": "hi", "count": 3}
    assert registry.deserialize("Greeting", JSON, encoded.data) == Greeting("hi", 3)


def test_custom_json_type_name_and_unknown_fields_are_ignored() -> None:
    registry = SerializationRegistry()
    registry.add(DataclassJsonSerializer(Greeting, "app.Greeting"))
    message = registry.deserialize("app.Greeting", JSON, b'{"text": "x", "extra": 1}')
    assert message == Greeting("x")


@pytest.mark.requirement("AWP-PUB-021")
def test_protobuf_payload_is_a_serialized_any() -> None:
    registry = SerializationRegistry()
    encoded = registry.serialize(contract_pb2.Ping(text="p", seq=7))
    assert encoded.type_name == "agentworker.conformance.v1.Ping"
    assert encoded.content_type == PROTOBUF
    envelope = any_pb2.Any()
    envelope.ParseFromString(encoded.data)
    assert envelope.type_url == "type.googleapis.com/agentworker.conformance.v1.Ping"
    assert registry.deserialize(encoded.type_name, PROTOBUF, encoded.data) == contract_pb2.Ping(
        text="p", seq=7
    )


def test_imported_protobuf_types_decode_without_registration() -> None:
    encoded = SerializationRegistry().serialize(contract_pb2.Pong(text="a", seq=1, agent_key="k"))
    fresh = SerializationRegistry()
    decoded = fresh.deserialize("agentworker.conformance.v1.Pong", PROTOBUF, encoded.data)
    assert decoded == contract_pb2.Pong(text="a", seq=1, agent_key="k")


def test_unknown_type_is_a_clear_error() -> None:
    registry = SerializationRegistry()
    with pytest.raises(UnknownMessageTypeError, match="Nope"):
        registry.deserialize("Nope", JSON, b"{}")
    with pytest.raises(UnknownMessageTypeError):
        registry.deserialize("no.such.Message", PROTOBUF, b"")
    with pytest.raises(UnknownMessageTypeError):
        registry.serialize(NotAMessage())


def test_same_name_different_content_type_are_distinct() -> None:
    registry = SerializationRegistry()
    registry.add_type(Greeting)
    with pytest.raises(UnknownMessageTypeError):
        registry.deserialize("Greeting", PROTOBUF, b"")


def test_undecodable_json_is_a_serialization_error() -> None:
    registry = SerializationRegistry()
    registry.add_type(Greeting)
    with pytest.raises(SerializationError):
        registry.deserialize("Greeting", JSON, b"not json")
    with pytest.raises(SerializationError):
        registry.deserialize("Greeting", JSON, b"[1, 2]")


@pytest.mark.requirement("AWP-RPC-020")
def test_none_is_json_null_named_nonetype() -> None:
    encoded = SerializationRegistry().serialize(None)
    assert (encoded.type_name, encoded.content_type, encoded.data) == ("NoneType", JSON, b"null")


def _attribute(event: cloudevents_pb2.CloudEvent, name: str) -> str:
    value = event.attributes[name]
    assert value.WhichOneof("attr") == "ce_string"
    return value.ce_string


@pytest.mark.requirement("AWP-PUB-001", "AWP-PUB-002", "AWP-PUB-020")
def test_cloud_event_carries_every_attribute_for_json() -> None:
    registry = SerializationRegistry()
    trace = TraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "k=v")
    event = build_cloud_event(
        registry.serialize(Greeting("hi")), TopicId("chat", "room"), AgentId("writer", "w1"), trace
    )
    uuid.UUID(event.id)
    assert (event.type, event.source, event.spec_version) == ("chat", "room", "1.0")
    assert _attribute(event, "datacontenttype") == "application/json"
    assert _attribute(event, "dataschema") == "Greeting"
    assert _attribute(event, "agagentsendertype") == "writer"
    assert _attribute(event, "agagentsenderkey") == "w1"
    assert _attribute(event, "agmsgkind") == "publish"
    assert _attribute(event, "traceparent") == trace.traceparent
    assert _attribute(event, "tracestate") == "k=v"
    assert event.WhichOneof("data") == "binary_data"
    assert json.loads(event.binary_data) == {"text": "hi", "count": 0}
    for name in event.attributes:
        assert name.isalnum()
        assert name == name.lower()


def test_cloud_event_without_sender_or_trace_omits_them_and_ids_are_fresh() -> None:
    registry = SerializationRegistry()
    first = build_cloud_event(registry.serialize(Greeting("a")), TopicId("t"))
    second = build_cloud_event(registry.serialize(Greeting("a")), TopicId("t"))
    assert first.id != second.id
    for name in ("agagentsendertype", "agagentsenderkey", "traceparent"):
        assert name not in first.attributes


@pytest.mark.requirement("AWP-PUB-021")
def test_cloud_event_carries_protobuf_in_proto_data_and_parses_back() -> None:
    registry = SerializationRegistry()
    event = build_cloud_event(
        registry.serialize(contract_pb2.Ping(text="x", seq=2)), TopicId("t", "s")
    )
    assert event.WhichOneof("data") == "proto_data"
    assert event.proto_data.type_url.endswith("/agentworker.conformance.v1.Ping")
    assert event.attributes["datacontenttype"].ce_string == PROTOBUF
    received = parse_cloud_event(event, registry)
    assert received.message == contract_pb2.Ping(text="x", seq=2)
    assert received.topic == TopicId("t", "s")
    assert received.sender is None


@pytest.mark.requirement("AWP-PUB-022", "AWP-PUB-002")
def test_parse_accepts_text_data_and_reads_sender() -> None:
    registry = SerializationRegistry()
    registry.add_type(Greeting)
    attr = cloudevents_pb2.CloudEvent.CloudEventAttributeValue
    event = cloudevents_pb2.CloudEvent(
        id="e1",
        source="s",
        spec_version="1.0",
        type="t",
        attributes={
            "datacontenttype": attr(ce_string=JSON),
            "dataschema": attr(ce_string="Greeting"),
            "agagentsendertype": attr(ce_string="a"),
            "agagentsenderkey": attr(ce_string="k"),
            "unknownattr": attr(ce_integer=5),
        },
        text_data='{"text": "hello"}',
    )
    received = parse_cloud_event(event, registry)
    assert received.message == Greeting("hello")
    assert received.sender == AgentId("a", "k")
    assert received.event_id == "e1"


def test_parse_of_unknown_schema_raises() -> None:
    attr = cloudevents_pb2.CloudEvent.CloudEventAttributeValue
    event = cloudevents_pb2.CloudEvent(
        id="e2",
        source="s",
        spec_version="1.0",
        type="t",
        attributes={"dataschema": attr(ce_string="Mystery")},
        binary_data=b"{}",
    )
    with pytest.raises(UnknownMessageTypeError):
        parse_cloud_event(event, SerializationRegistry())


def test_content_type_parameters_and_case_are_ignored() -> None:
    registry = SerializationRegistry()
    registry.add_type(Greeting)
    message = registry.deserialize("Greeting", "Application/JSON; charset=utf-8", b'{"text": "a"}')
    assert message == Greeting("a")
    assert registry.deserialize("Greeting", "", b'{"text": "b"}') == Greeting("b")


@pytest.mark.requirement("AWP-PUB-002")
def test_known_attributes_are_read_from_any_string_like_case() -> None:
    registry = SerializationRegistry()
    registry.add_type(Greeting)
    attr = cloudevents_pb2.CloudEvent.CloudEventAttributeValue
    event = cloudevents_pb2.CloudEvent(
        id="e3",
        source="s",
        spec_version="1.0",
        type="t",
        attributes={
            "datacontenttype": attr(ce_string=JSON),
            "dataschema": attr(ce_uri_ref="Greeting"),
            "agagentsendertype": attr(ce_bytes=b"a"),
            "agagentsenderkey": attr(ce_string="k"),
        },
        binary_data=b'{"text": "x"}',
    )
    received = parse_cloud_event(event, registry)
    assert received.message == Greeting("x")
    assert received.sender == AgentId("a", "k")


def test_pydantic_models() -> None:
    import pydantic

    class Model(pydantic.BaseModel):
        text: str

    registry = SerializationRegistry()
    encoded = registry.serialize(Model(text="p"))
    assert (encoded.type_name, encoded.content_type) == ("Model", JSON)
    assert registry.deserialize("Model", JSON, encoded.data) == Model(text="p")


@dataclass
class Point:
    x: int
    y: int


@dataclass
class Shape:
    name: str
    points: list[Point]
    anchor: Point | None = None
    labels: dict[str, Point] | None = None


def test_nested_dataclasses_round_trip() -> None:
    registry = SerializationRegistry()
    shape = Shape("tri", [Point(0, 0), Point(1, 0)], Point(5, 5), {"top": Point(0, 1)})
    encoded = registry.serialize(shape)
    assert registry.deserialize("Shape", JSON, encoded.data) == shape
    assert registry.deserialize("Shape", JSON, b'{"name": "n", "points": []}') == Shape("n", [])
