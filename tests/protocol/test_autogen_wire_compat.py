"""Our messages and AutoGen 0.4.6+'s are the same bytes on the wire.

The AutoGen side is rebuilt here, independently of protos/, from the published field table
(shared/design/NOTES.md, section 1): the `agents` package of autogen-ext's agent_worker.proto and
the CloudEvents protobuf format it imports. It lives in its own DescriptorPool, so its type names
(`agents.*`, `io.cloudevents.v1.*`) never meet ours.

Checked for every AutoGen message: the descriptors agree field by field (number, type, label,
presence, oneof grouping; names ignored); our bytes parse as AutoGen's with equal values, and the
reverse; and our v1 extension fields are unknown fields to an AutoGen peer, which keeps them
when it re-serializes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import pytest
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    timestamp_pb2,
    unknown_fields,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from agentworker.cloudevents.v1 import cloudevents_pb2
from agentworker.v1 import agentworker_pb2 as v1

FieldProto = descriptor_pb2.FieldDescriptorProto

# --- AutoGen's schema, rebuilt from its field table --------------------------------------------

_STRING = FieldProto.TYPE_STRING
_BYTES = FieldProto.TYPE_BYTES
_MESSAGE = FieldProto.TYPE_MESSAGE


def _field(
    name: str,
    number: int,
    kind: int = _STRING,
    type_name: str = "",
    *,
    repeated: bool = False,
    oneof: int | None = None,
    proto3_optional: bool = False,
) -> FieldProto:
    field = FieldProto(
        name=name,
        number=number,
        type=cast(Any, kind),
        label=FieldProto.LABEL_REPEATED if repeated else FieldProto.LABEL_OPTIONAL,
    )
    if proto3_optional:
        field.proto3_optional = True
    if type_name:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _message(
    name: str,
    fields: Iterable[FieldProto] = (),
    *,
    oneofs: Iterable[str] = (),
    nested: Iterable[descriptor_pb2.DescriptorProto] = (),
) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name, field=fields, nested_type=nested)
    for oneof in oneofs:
        message.oneof_decl.add(name=oneof)
    return message


def _map_entry(name: str, value: FieldProto) -> descriptor_pb2.DescriptorProto:
    entry = _message(name, [_field("key", 1), value])
    entry.options.map_entry = True
    return entry


def _string_map(owner: str, name: str, number: int) -> tuple[FieldProto, Any]:
    entry = _map_entry("MetadataEntry", _field("value", 2))
    return _field(name, number, _MESSAGE, f".{owner}.MetadataEntry", repeated=True), entry


def _cloudevents_file() -> descriptor_pb2.FileDescriptorProto:
    value = ".io.cloudevents.v1.CloudEvent.CloudEventAttributeValue"
    attribute_value = _message(
        "CloudEventAttributeValue",
        [
            _field("ce_boolean", 1, FieldProto.TYPE_BOOL, oneof=0),
            _field("ce_integer", 2, FieldProto.TYPE_INT32, oneof=0),
            _field("ce_string", 3, oneof=0),
            _field("ce_bytes", 4, _BYTES, oneof=0),
            _field("ce_uri", 5, oneof=0),
            _field("ce_uri_ref", 6, oneof=0),
            _field("ce_timestamp", 7, _MESSAGE, ".google.protobuf.Timestamp", oneof=0),
        ],
        oneofs=["attr"],
    )
    event = _message(
        "CloudEvent",
        [
            _field("id", 1),
            _field("source", 2),
            _field("spec_version", 3),
            _field("type", 4),
            _field(
                "attributes",
                5,
                _MESSAGE,
                ".io.cloudevents.v1.CloudEvent.AttributesEntry",
                repeated=True,
            ),
            _field("binary_data", 6, _BYTES, oneof=0),
            _field("text_data", 7, oneof=0),
            _field("proto_data", 8, _MESSAGE, ".google.protobuf.Any", oneof=0),
        ],
        oneofs=["data"],
        nested=[
            _map_entry("AttributesEntry", _field("value", 2, _MESSAGE, value)),
            attribute_value,
        ],
    )
    return descriptor_pb2.FileDescriptorProto(
        name="autogen_shaped/cloudevent.proto",
        package="io.cloudevents.v1",
        syntax="proto3",
        dependency=["google/protobuf/any.proto", "google/protobuf/timestamp.proto"],
        message_type=[event],
    )


def _agents_file() -> descriptor_pb2.FileDescriptorProto:
    agent_id, payload = ".agents.AgentId", ".agents.Payload"
    request_metadata, request_entry = _string_map("agents.RpcRequest", "metadata", 6)
    response_metadata, response_entry = _string_map("agents.RpcResponse", "metadata", 4)
    messages = [
        _message("AgentId", [_field("type", 1), _field("key", 2)]),
        _message(
            "Payload",
            [_field("data_type", 1), _field("data_content_type", 2), _field("data", 3, _BYTES)],
        ),
        _message(
            "RpcRequest",
            [
                _field("request_id", 1),
                _field("source", 2, _MESSAGE, agent_id, oneof=0, proto3_optional=True),
                _field("target", 3, _MESSAGE, agent_id),
                _field("method", 4),
                _field("payload", 5, _MESSAGE, payload),
                request_metadata,
            ],
            oneofs=["_source"],
            nested=[request_entry],
        ),
        _message(
            "RpcResponse",
            [
                _field("request_id", 1),
                _field("payload", 2, _MESSAGE, payload),
                _field("error", 3),
                response_metadata,
            ],
            nested=[response_entry],
        ),
        _message("RegisterAgentTypeRequest", [_field("type", 1)]),
        _message("RegisterAgentTypeResponse"),
        _message("TypeSubscription", [_field("topic_type", 1), _field("agent_type", 2)]),
        _message(
            "TypePrefixSubscription", [_field("topic_type_prefix", 1), _field("agent_type", 2)]
        ),
        _message(
            "Subscription",
            [
                _field("id", 1),
                _field("typeSubscription", 2, _MESSAGE, ".agents.TypeSubscription", oneof=0),
                _field(
                    "typePrefixSubscription",
                    3,
                    _MESSAGE,
                    ".agents.TypePrefixSubscription",
                    oneof=0,
                ),
            ],
            oneofs=["subscription"],
        ),
        _message(
            "AddSubscriptionRequest", [_field("subscription", 1, _MESSAGE, ".agents.Subscription")]
        ),
        _message("AddSubscriptionResponse"),
        _message("RemoveSubscriptionRequest", [_field("id", 1)]),
        _message("RemoveSubscriptionResponse"),
        _message("GetSubscriptionsRequest"),
        _message(
            "GetSubscriptionsResponse",
            [_field("subscriptions", 1, _MESSAGE, ".agents.Subscription", repeated=True)],
        ),
        _message(
            "Message",
            [
                _field("request", 1, _MESSAGE, ".agents.RpcRequest", oneof=0),
                _field("response", 2, _MESSAGE, ".agents.RpcResponse", oneof=0),
                _field("cloudEvent", 3, _MESSAGE, ".io.cloudevents.v1.CloudEvent", oneof=0),
            ],
            oneofs=["message"],
        ),
        _message("SaveStateRequest", [_field("agentId", 1, _MESSAGE, agent_id)]),
        _message(
            "SaveStateResponse",
            [_field("state", 1), _field("error", 2, oneof=0, proto3_optional=True)],
            oneofs=["_error"],
        ),
        _message(
            "LoadStateRequest", [_field("agentId", 1, _MESSAGE, agent_id), _field("state", 2)]
        ),
        _message(
            "LoadStateResponse",
            [_field("error", 1, oneof=0, proto3_optional=True)],
            oneofs=["_error"],
        ),
        _message(
            "ControlMessage",
            [
                _field("rpc_id", 1),
                _field("destination", 2),
                _field("respond_to", 3, oneof=0, proto3_optional=True),
                _field("rpcMessage", 4, _MESSAGE, ".google.protobuf.Any"),
            ],
            oneofs=["_respond_to"],
        ),
    ]
    service = descriptor_pb2.ServiceDescriptorProto(name="AgentRpc")
    for name, request, response, streaming in [
        ("OpenChannel", "Message", "Message", True),
        ("OpenControlChannel", "ControlMessage", "ControlMessage", True),
        ("RegisterAgent", "RegisterAgentTypeRequest", "RegisterAgentTypeResponse", False),
        ("AddSubscription", "AddSubscriptionRequest", "AddSubscriptionResponse", False),
        ("RemoveSubscription", "RemoveSubscriptionRequest", "RemoveSubscriptionResponse", False),
        ("GetSubscriptions", "GetSubscriptionsRequest", "GetSubscriptionsResponse", False),
    ]:
        service.method.add(
            name=name,
            input_type=f".agents.{request}",
            output_type=f".agents.{response}",
            client_streaming=streaming,
            server_streaming=streaming,
        )
    return descriptor_pb2.FileDescriptorProto(
        name="autogen_shaped/agent_worker.proto",
        package="agents",
        syntax="proto3",
        dependency=["autogen_shaped/cloudevent.proto", "google/protobuf/any.proto"],
        message_type=messages,
        service=[service],
    )


def _legacy_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for well_known in (any_pb2.DESCRIPTOR, timestamp_pb2.DESCRIPTOR):
        file_proto = descriptor_pb2.FileDescriptorProto()
        well_known.CopyToProto(file_proto)
        pool.Add(file_proto)
    pool.Add(_cloudevents_file())
    pool.Add(_agents_file())
    return pool


LEGACY_POOL = _legacy_pool()
OUR_POOL = descriptor_pool.Default()


def legacy(full_name: str) -> type[Message]:
    return message_factory.GetMessageClass(LEGACY_POOL.FindMessageTypeByName(full_name))


# Our message -> its AutoGen counterpart.
COUNTERPARTS: dict[str, str] = {
    "agentworker.v1.AgentId": "agents.AgentId",
    "agentworker.v1.Payload": "agents.Payload",
    "agentworker.v1.RpcRequest": "agents.RpcRequest",
    "agentworker.v1.RpcResponse": "agents.RpcResponse",
    "agentworker.v1.RegisterAgentRequest": "agents.RegisterAgentTypeRequest",
    "agentworker.v1.RegisterAgentResponse": "agents.RegisterAgentTypeResponse",
    "agentworker.v1.TypeSubscription": "agents.TypeSubscription",
    "agentworker.v1.TypePrefixSubscription": "agents.TypePrefixSubscription",
    "agentworker.v1.Subscription": "agents.Subscription",
    "agentworker.v1.AddSubscriptionRequest": "agents.AddSubscriptionRequest",
    "agentworker.v1.AddSubscriptionResponse": "agents.AddSubscriptionResponse",
    "agentworker.v1.RemoveSubscriptionRequest": "agents.RemoveSubscriptionRequest",
    "agentworker.v1.RemoveSubscriptionResponse": "agents.RemoveSubscriptionResponse",
    "agentworker.v1.GetSubscriptionsRequest": "agents.GetSubscriptionsRequest",
    "agentworker.v1.GetSubscriptionsResponse": "agents.GetSubscriptionsResponse",
    "agentworker.v1.OpenChannelRequest": "agents.Message",
    "agentworker.v1.OpenChannelResponse": "agents.Message",
    "agentworker.v1.OpenControlChannelRequest": "agents.ControlMessage",
    "agentworker.v1.OpenControlChannelResponse": "agents.ControlMessage",
    "agentworker.v1.SaveStateRequest": "agents.SaveStateRequest",
    "agentworker.v1.SaveStateResponse": "agents.SaveStateResponse",
    "agentworker.v1.LoadStateRequest": "agents.LoadStateRequest",
    "agentworker.v1.LoadStateResponse": "agents.LoadStateResponse",
    "io.cloudevents.v1.CloudEvent": "io.cloudevents.v1.CloudEvent",
    "io.cloudevents.v1.CloudEvent.CloudEventAttributeValue": (
        "io.cloudevents.v1.CloudEvent.CloudEventAttributeValue"
    ),
    # Not messages of ours, but referenced by both sides.
    "google.protobuf.Any": "google.protobuf.Any",
    "google.protobuf.Timestamp": "google.protobuf.Timestamp",
}

# Fields that exist only in agentworker v1: additions an AutoGen peer does not know.
V1_EXTENSIONS: dict[str, set[int]] = {
    "agentworker.v1.RpcRequest": {7},  # timeout_ms
    "agentworker.v1.RpcResponse": {5},  # error_code
    "agentworker.v1.OpenChannelRequest": {10},  # batch
    "agentworker.v1.OpenChannelResponse": {10, 11},  # batch, notice
    "agentworker.v1.SaveStateResponse": {3},  # error_code
    "agentworker.v1.LoadStateResponse": {2},  # error_code
}

# --- descriptor comparison ---------------------------------------------------------------------

Shape = tuple[object, ...]


def _message_proto(pool: descriptor_pool.DescriptorPool, full_name: str) -> Any:
    proto = descriptor_pb2.DescriptorProto()
    pool.FindMessageTypeByName(full_name).CopyToProto(proto)
    return proto


def _type_shape(pool: descriptor_pool.DescriptorPool, type_name: str, ours: bool) -> object:
    """Name a field's message type so that counterparts compare equal: map entries by their
    key and value shapes, other messages by their AutoGen name."""
    full_name = type_name.lstrip(".")
    proto = _message_proto(pool, full_name)
    if proto.options.map_entry:
        return ("map", *(_field_shape(pool, field, proto, ours) for field in proto.field))
    return COUNTERPARTS.get(full_name, full_name) if ours else full_name


def _field_shape(pool: descriptor_pool.DescriptorPool, field: Any, owner: Any, ours: bool) -> Shape:
    if field.HasField("oneof_index") and not field.proto3_optional:
        oneof: object = frozenset(
            other.number
            for other in owner.field
            if other.HasField("oneof_index") and other.oneof_index == field.oneof_index
        )
    else:
        oneof = None
    if field.type == FieldProto.TYPE_MESSAGE:
        type_name: object = _type_shape(pool, field.type_name, ours)
    else:
        type_name = field.type_name or None  # enums exist only among our extensions
    return (field.number, field.type, field.label, field.proto3_optional, oneof, type_name)


def _shapes(pool: descriptor_pool.DescriptorPool, full_name: str, ours: bool) -> dict[int, Shape]:
    proto = _message_proto(pool, full_name)
    return {field.number: _field_shape(pool, field, proto, ours) for field in proto.field}


def _without(shape: Shape, numbers: set[int]) -> Shape:
    """Drop extension fields from a oneof grouping (batch and notice join AutoGen's oneof)."""
    oneof = shape[4]
    if isinstance(oneof, frozenset):
        return (*shape[:4], frozenset(oneof - numbers), *shape[5:])
    return shape


MESSAGE_PAIRS = sorted(
    (ours, theirs) for ours, theirs in COUNTERPARTS.items() if not ours.startswith("google.")
)


def test_legacy_schema_has_every_autogen_message() -> None:
    file = LEGACY_POOL.FindFileByName("autogen_shaped/agent_worker.proto")
    assert set(file.message_types_by_name) == {
        name.removeprefix("agents.") for name in COUNTERPARTS.values() if name.startswith("agents.")
    }


@pytest.mark.parametrize(("ours", "theirs"), MESSAGE_PAIRS)
def test_fields_match_autogen_by_number_and_type(ours: str, theirs: str) -> None:
    our_shapes = _shapes(OUR_POOL, ours, ours=True)
    their_shapes = _shapes(LEGACY_POOL, theirs, ours=False)
    extensions = V1_EXTENSIONS.get(ours, set())
    assert set(our_shapes) - set(their_shapes) == extensions, "unexpected additions"
    assert set(their_shapes) <= set(our_shapes), "a field AutoGen has is missing"
    for number, shape in their_shapes.items():
        assert _without(our_shapes[number], extensions) == shape, f"field {number} differs"


def test_service_matches_autogen_methods() -> None:
    theirs = LEGACY_POOL.FindServiceByName("agents.AgentRpc")
    ours = OUR_POOL.FindServiceByName("agentworker.v1.AgentRpcService")

    def methods(service: Any, ours: bool) -> dict[str, tuple[object, ...]]:
        def name(message: Descriptor) -> str:
            return COUNTERPARTS[message.full_name] if ours else message.full_name

        return {
            method.name: (
                name(method.input_type),
                name(method.output_type),
                method.client_streaming,
                method.server_streaming,
            )
            for method in service.methods
        }

    assert methods(ours, ours=True) == methods(theirs, ours=False)


# --- values by field number --------------------------------------------------------------------


def by_number(message: Message) -> dict[int, object]:
    """Give a message's set fields keyed by field number, recursively, so that messages of
    different schemas (different field names) can be compared."""

    def value(field: FieldDescriptor, raw: Any) -> object:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {
                key: value(field.message_type.fields_by_name["value"], v) for key, v in raw.items()
            }
        if field.is_repeated:
            return [value_one(field, item) for item in raw]
        return value_one(field, raw)

    def value_one(field: FieldDescriptor, raw: Any) -> object:
        return by_number(raw) if field.message_type is not None else raw

    return {field.number: value(field, raw) for field, raw in message.ListFields()}


def fill_by_number(message: Message, values: dict[int, object]) -> Message:
    """Set the fields of `message` from by_number()'s output (the inverse of by_number)."""
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    for number, raw in values.items():
        field = descriptor.fields_by_number[number]
        target: Any = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry_value = field.message_type.fields_by_name["value"]
            assert isinstance(raw, dict)
            for key, item in raw.items():
                if entry_value.message_type is not None:
                    fill_by_number(target[key], item)
                else:
                    target[key] = item
        elif field.is_repeated:
            assert isinstance(raw, list)
            for item in raw:
                if field.message_type is not None:
                    fill_by_number(target.add(), item)
                else:
                    target.append(item)
        elif field.message_type is not None:
            assert isinstance(raw, dict)
            target.SetInParent()
            fill_by_number(target, raw)
        else:
            setattr(message, field.name, raw)
    return message


# --- samples: every field AutoGen has, set in our messages -------------------------------------


def _agent_id(key: str = "default") -> v1.AgentId:
    return v1.AgentId(type="writer", key=key)


def _payload() -> v1.Payload:
    return v1.Payload(
        data_type="WriteRequest", data_content_type="application/json", data=b'{"topic":"x"}'
    )


def _rpc_request() -> v1.RpcRequest:
    return v1.RpcRequest(
        request_id="17",
        source=_agent_id("caller"),
        target=_agent_id(),
        method="on_write",
        payload=_payload(),
        metadata={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )


def _rpc_response() -> v1.RpcResponse:
    return v1.RpcResponse(
        request_id="17", payload=_payload(), error="", metadata={"elapsed": "3ms"}
    )


def _failed_rpc_response() -> v1.RpcResponse:
    return v1.RpcResponse(request_id="18", error="handler raised ValueError")


def _cloud_event(data: str) -> cloudevents_pb2.CloudEvent:
    value = cloudevents_pb2.CloudEvent.CloudEventAttributeValue
    event = cloudevents_pb2.CloudEvent(
        id="7f3c",
        source="session-1",
        spec_version="1.0",
        type="news",
        attributes={
            "datacontenttype": value(ce_string="application/json"),
            "agmsgkind": value(ce_string="publish"),
            "flag": value(ce_boolean=True),
            "count": value(ce_integer=-42),
            "blob": value(ce_bytes=b"\x00\x01"),
            "dataschema": value(ce_uri="https://example.com/schema"),
            "ref": value(ce_uri_ref="/schema#v1"),
            "time": value(ce_timestamp=timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=5)),
        },
    )
    if data == "binary":
        event.binary_data = b'{"headline":"hello"}'
    elif data == "text":
        event.text_data = "hello"
    else:
        event.proto_data.Pack(_agent_id())
    return event


def _subscription(kind: str) -> v1.Subscription:
    if kind == "type":
        return v1.Subscription(
            id="sub-1",
            type_subscription=v1.TypeSubscription(topic_type="news", agent_type="writer"),
        )
    return v1.Subscription(
        id="sub-2",
        type_prefix_subscription=v1.TypePrefixSubscription(
            topic_type_prefix="writer:", agent_type="writer"
        ),
    )


def _control(cls: Callable[..., Message], message: Message, respond_to: bool) -> Message:
    rpc_message = any_pb2.Any()
    rpc_message.Pack(message)
    frame = cls(rpc_id="c-1", destination="agentid=writer/default", rpc_message=rpc_message)
    if respond_to:
        frame.respond_to = "clientid=worker-a"  # type: ignore[attr-defined]
    return frame


SAMPLES: dict[str, Message] = {
    "agent-id": _agent_id(),
    "payload": _payload(),
    "rpc-request": _rpc_request(),
    "rpc-request-no-source": v1.RpcRequest(request_id="1", target=_agent_id(), payload=_payload()),
    "rpc-response": _rpc_response(),
    "rpc-response-error": _failed_rpc_response(),
    "register-agent": v1.RegisterAgentRequest(type="writer"),
    "register-agent-response": v1.RegisterAgentResponse(),
    "type-subscription": v1.TypeSubscription(topic_type="news", agent_type="writer"),
    "type-prefix-subscription": v1.TypePrefixSubscription(
        topic_type_prefix="writer:", agent_type="writer"
    ),
    "subscription-type": _subscription("type"),
    "subscription-prefix": _subscription("prefix"),
    "add-subscription": v1.AddSubscriptionRequest(subscription=_subscription("type")),
    "add-subscription-response": v1.AddSubscriptionResponse(),
    "remove-subscription": v1.RemoveSubscriptionRequest(id="sub-1"),
    "remove-subscription-response": v1.RemoveSubscriptionResponse(),
    "get-subscriptions": v1.GetSubscriptionsRequest(),
    "get-subscriptions-response": v1.GetSubscriptionsResponse(
        subscriptions=[_subscription("type"), _subscription("prefix")]
    ),
    "frame-in-request": v1.OpenChannelRequest(request=_rpc_request()),
    "frame-in-response": v1.OpenChannelRequest(response=_rpc_response()),
    "frame-in-event-binary": v1.OpenChannelRequest(cloud_event=_cloud_event("binary")),
    "frame-in-event-text": v1.OpenChannelRequest(cloud_event=_cloud_event("text")),
    "frame-in-event-proto": v1.OpenChannelRequest(cloud_event=_cloud_event("proto")),
    "frame-out-request": v1.OpenChannelResponse(request=_rpc_request()),
    "frame-out-response": v1.OpenChannelResponse(response=_failed_rpc_response()),
    "frame-out-event": v1.OpenChannelResponse(cloud_event=_cloud_event("binary")),
    "control-in-request": _control(
        v1.OpenControlChannelRequest, v1.SaveStateRequest(agent_id=_agent_id()), respond_to=True
    ),
    "control-out-request": _control(
        v1.OpenControlChannelResponse,
        v1.LoadStateRequest(agent_id=_agent_id(), state='{"n":1}'),
        respond_to=True,
    ),
    "control-in-response": _control(
        v1.OpenControlChannelRequest, v1.SaveStateResponse(state="{}"), respond_to=False
    ),
    "save-state": v1.SaveStateRequest(agent_id=_agent_id()),
    "save-state-response": v1.SaveStateResponse(state='{"n":1}', error="not found"),
    "load-state": v1.LoadStateRequest(agent_id=_agent_id(), state='{"n":1}'),
    "load-state-response": v1.LoadStateResponse(error="bad state"),
    "load-state-response-ok": v1.LoadStateResponse(),
}


def _unknown_numbers(message: Message) -> list[int]:
    unknown = unknown_fields.UnknownFieldSet(message)
    return [unknown[i].field_number for i in range(len(unknown))]


def _counterpart(message: Message) -> type[Message]:
    return legacy(COUNTERPARTS[message.DESCRIPTOR.full_name])


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_our_bytes_parse_as_autogen(sample: Message) -> None:
    wire = sample.SerializeToString(deterministic=True)
    theirs = _counterpart(sample).FromString(wire)
    assert by_number(theirs) == by_number(sample)
    assert _unknown_numbers(theirs) == []
    assert theirs.SerializeToString(deterministic=True) == wire


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_autogen_bytes_parse_as_ours(sample: Message) -> None:
    theirs = fill_by_number(_counterpart(sample)(), by_number(sample))
    wire = theirs.SerializeToString(deterministic=True)
    ours = type(sample).FromString(wire)
    assert ours == sample
    assert by_number(ours) == by_number(theirs)
    assert ours.SerializeToString(deterministic=True) == wire


def _legacy_fields_set(message: Message, seen: set[tuple[str, int]]) -> None:
    for field, raw in message.ListFields():
        owner = message.DESCRIPTOR.full_name
        seen.add((owner, field.number))
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items: Iterable[Any] = raw.values()
        else:
            items = raw if field.is_repeated else [raw]
        for item in items:
            if isinstance(item, Message):
                _legacy_fields_set(item, seen)


def test_samples_set_every_autogen_field() -> None:
    seen: set[tuple[str, int]] = set()
    for sample in SAMPLES.values():
        _legacy_fields_set(_counterpart(sample).FromString(sample.SerializeToString()), seen)
    expected = {
        (descriptor.full_name, field.number)
        for file_name in ("autogen_shaped/agent_worker.proto", "autogen_shaped/cloudevent.proto")
        for top in LEGACY_POOL.FindFileByName(file_name).message_types_by_name.values()
        for descriptor in (top, *top.nested_types)
        if not descriptor.GetOptions().map_entry
        for field in descriptor.fields
    }
    assert expected - seen == set()


def test_optional_presence_survives_both_ways() -> None:
    empty_source = v1.RpcRequest(request_id="1")
    empty_source.source.SetInParent()
    theirs = legacy("agents.RpcRequest").FromString(empty_source.SerializeToString())
    assert theirs.HasField("source")
    back = v1.RpcRequest.FromString(theirs.SerializeToString())
    assert back.HasField("source")
    assert not v1.RpcRequest.FromString(
        legacy("agents.RpcRequest")(request_id="1").SerializeToString()
    ).HasField("source")

    ok = legacy("agents.SaveStateResponse")(state="{}")
    assert not v1.SaveStateResponse.FromString(ok.SerializeToString()).HasField("error")
    failed = legacy("agents.SaveStateResponse")(error="")
    assert v1.SaveStateResponse.FromString(failed.SerializeToString()).HasField("error")


def test_control_message_carries_legacy_type_urls() -> None:
    """AutoGen packs `agents.*` messages into ControlMessage.rpcMessage: the type URL names the
    legacy type, and the packed bytes are our message's bytes."""
    legacy_request = legacy("agents.SaveStateRequest")()
    fill_by_number(legacy_request, {1: {1: "writer", 2: "default"}})
    control = legacy("agents.ControlMessage")(
        rpc_id="c-1", destination="agentid=writer/default", respond_to="clientid=worker-a"
    )
    rpc_message: Any = control.rpcMessage  # type: ignore[attr-defined]
    rpc_message.Pack(legacy_request)
    ours = v1.OpenControlChannelRequest.FromString(control.SerializeToString())
    assert ours.rpc_message.type_url == "type.googleapis.com/agents.SaveStateRequest"
    assert v1.SaveStateRequest.FromString(ours.rpc_message.value) == v1.SaveStateRequest(
        agent_id=_agent_id()
    )


# --- v1 extensions are unknown fields to AutoGen -----------------------------------------------

_BATCHED = v1.OpenChannelRequest(
    batch=v1.OpenChannelRequest.Batch(
        messages=[
            v1.OpenChannelRequest(request=_rpc_request()),
            v1.OpenChannelRequest(cloud_event=_cloud_event("binary")),
        ]
    )
)
EXTENSION_SAMPLES: dict[str, tuple[Message, int]] = {
    "rpc-response-error-code": (
        v1.RpcResponse(
            request_id="9",
            error="deadline exceeded",
            error_code=v1.ERROR_CODE_DEADLINE_EXCEEDED,
        ),
        5,
    ),
    "rpc-request-timeout-ms": (
        v1.RpcRequest(request_id="9", target=_agent_id(), payload=_payload(), timeout_ms=1500),
        7,
    ),
    "open-channel-request-batch": (_BATCHED, 10),
    "open-channel-response-notice": (
        v1.OpenChannelResponse(
            notice=v1.Notice(code=v1.ERROR_CODE_OVERLOADED, message="queue full", event_id="e1")
        ),
        11,
    ),
    "save-state-response-error-code": (
        v1.SaveStateResponse(error="no such agent", error_code=v1.ERROR_CODE_UNKNOWN_TARGET),
        3,
    ),
    "load-state-response-error-code": (
        v1.LoadStateResponse(error="bad state", error_code=v1.ERROR_CODE_HANDLER_FAILED),
        2,
    ),
}


def test_every_v1_extension_field_is_exercised() -> None:
    covered: dict[str, set[int]] = {}
    for message, number in EXTENSION_SAMPLES.values():
        covered.setdefault(message.DESCRIPTOR.full_name, set()).add(number)
    expected = {
        name: numbers - {10} if name == "agentworker.v1.OpenChannelResponse" else numbers
        for name, numbers in V1_EXTENSIONS.items()
    }
    # OpenChannelResponse.batch (10) behaves exactly like OpenChannelRequest.batch.
    assert covered == expected


@pytest.mark.parametrize(
    ("sample", "number"), EXTENSION_SAMPLES.values(), ids=EXTENSION_SAMPLES.keys()
)
def test_v1_extensions_are_unknown_to_autogen_and_survive(sample: Message, number: int) -> None:
    theirs = _counterpart(sample).FromString(sample.SerializeToString())

    assert _unknown_numbers(theirs) == [number]
    known = {n: v for n, v in by_number(sample).items() if n != number}
    assert by_number(theirs) == known
    if sample.DESCRIPTOR.full_name.startswith("agentworker.v1.OpenChannel"):
        # A frame whose only content is an extension is an empty Message to AutoGen.
        assert theirs.WhichOneof("message") is None

    relayed = type(sample).FromString(theirs.SerializeToString())
    assert relayed == sample
