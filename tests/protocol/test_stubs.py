"""The generated Python stubs import, and every message survives encode/decode intact.

Messages are filled generically from their descriptors, so a field added to a .proto file is
covered without touching this test: every field is set, and every case of every oneof is set in
at least one variant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from google.protobuf import any_pb2, message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message

from agentworker.cloudevents.v1 import cloudevents_pb2
from agentworker.conformance.v1 import contract_pb2
from agentworker.v1 import agentworker_pb2, agentworker_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
GEN_PYTHON = REPO_ROOT / "gen" / "python"
FILES: tuple[FileDescriptor, ...] = (
    agentworker_pb2.DESCRIPTOR,
    cloudevents_pb2.DESCRIPTOR,
    contract_pb2.DESCRIPTOR,
)

# --- generated modules -------------------------------------------------------------------------


def _generated_modules() -> list[str]:
    return sorted(
        ".".join(path.relative_to(GEN_PYTHON).with_suffix("").parts)
        for path in GEN_PYTHON.rglob("*.py")
    )


def test_generated_modules_exist() -> None:
    modules = _generated_modules()
    for package in ("agentworker.v1", "agentworker.cloudevents.v1", "agentworker.conformance.v1"):
        assert any(name.startswith(f"{package}.") for name in modules), package


@pytest.mark.parametrize("module_name", _generated_modules())
def test_generated_module_imports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert Path(module.__file__ or "").resolve().is_relative_to(GEN_PYTHON)


@pytest.mark.parametrize(
    "module_name", [name for name in _generated_modules() if name.endswith("_pb2")]
)
def test_message_module_has_type_stub(module_name: str) -> None:
    path = GEN_PYTHON.joinpath(*module_name.split(".")).with_suffix(".pyi")
    assert path.is_file(), f"{path} is missing"


# --- generic filling ---------------------------------------------------------------------------

_SCALARS: dict[int, object] = {
    FieldDescriptor.TYPE_STRING: "text \u00fc\u2603",
    FieldDescriptor.TYPE_BYTES: b"\x00\xff\x80bytes",
    FieldDescriptor.TYPE_BOOL: True,
    FieldDescriptor.TYPE_INT32: -(2**31),
    FieldDescriptor.TYPE_SINT32: -7,
    FieldDescriptor.TYPE_SFIXED32: -7,
    FieldDescriptor.TYPE_UINT32: 2**32 - 1,
    FieldDescriptor.TYPE_FIXED32: 7,
    FieldDescriptor.TYPE_INT64: -(2**63),
    FieldDescriptor.TYPE_SINT64: -(2**40),
    FieldDescriptor.TYPE_SFIXED64: -(2**40),
    FieldDescriptor.TYPE_UINT64: 2**64 - 1,
    FieldDescriptor.TYPE_FIXED64: 2**40,
    FieldDescriptor.TYPE_DOUBLE: 1.5,
    FieldDescriptor.TYPE_FLOAT: 0.5,
}
# A message type already on the path is entered again only this close to the root, so
# recursive types (a Batch holding frames) nest exactly once.
_MAX_RECURSIVE_DEPTH = 3


def _scalar(field: FieldDescriptor, case: int) -> object:
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        values = [value.number for value in field.enum_type.values if value.number != 0]
        return values[case % len(values)]
    value = _SCALARS[field.type]
    if isinstance(value, str) and case:
        return f"{value} {case}"
    return value


def _map_key(field: FieldDescriptor, index: int) -> object:
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"key-{index}"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return bool(index)
    return index


def _allowed(field: FieldDescriptor, path: tuple[str, ...]) -> bool:
    if field.message_type is None:
        return True
    return field.message_type.full_name not in path or len(path) < _MAX_RECURSIVE_DEPTH


def _fill_message(message: Message, case: int, path: tuple[str, ...]) -> None:
    message.SetInParent()
    full_name = message.DESCRIPTOR.full_name
    if full_name == "google.protobuf.Any":
        assert isinstance(message, any_pb2.Any)
        message.Pack(agentworker_pb2.AgentId(type="packed", key=str(case)))
    elif full_name == "google.protobuf.Timestamp":
        assert isinstance(message, timestamp_pb2.Timestamp)
        message.seconds, message.nanos = 1_700_000_000 + case, 123_456_789
    else:
        fill(message, case, path)


def _set_field(message: Message, field: FieldDescriptor, case: int, path: tuple[str, ...]) -> None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        container: Any = getattr(message, field.name)
        for i in range(2):
            key = _map_key(key_field, i)
            if value_field.message_type is not None:
                _fill_message(container[key], case + i, path)
            else:
                container[key] = _scalar(value_field, case + i)
    elif field.is_repeated:
        repeated: Any = getattr(message, field.name)
        for i in range(2):
            if field.message_type is not None:
                _fill_message(repeated.add(), case + i, path)
            else:
                repeated.append(_scalar(field, case + i))
    elif field.message_type is not None:
        _fill_message(getattr(message, field.name), case, path)
    else:
        setattr(message, field.name, _scalar(field, case))


def fill(message: Message, case: int = 0, path: tuple[str, ...] = ()) -> Message:
    """Set every field of `message`; in each oneof, the allowed case numbered `case` (cyclic)."""
    # The protobuf stubs type DESCRIPTOR as a union with the upb classes; at run time the
    # upb classes are the descriptor.* ones.
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    path = (*path, descriptor.full_name)
    fields = list(descriptor.fields)
    chosen: set[str] = set()
    for oneof in descriptor.oneofs:
        candidates = [
            field.name
            for field in fields
            if field.containing_oneof is not None
            and field.containing_oneof.name == oneof.name
            and _allowed(field, path)
        ]
        if candidates:
            chosen.add(candidates[case % len(candidates)])
    for field in fields:
        if field.containing_oneof is not None and field.name not in chosen:
            continue
        if _allowed(field, path):
            _set_field(message, field, case, path)
    return message


def _walk(descriptor: Descriptor) -> Iterator[Descriptor]:
    yield descriptor
    for nested in descriptor.nested_types:
        if not nested.GetOptions().map_entry:
            yield from _walk(nested)


ALL_MESSAGES: dict[str, Descriptor] = {
    descriptor.full_name: descriptor
    for file in FILES
    for top in file.message_types_by_name.values()
    for descriptor in _walk(top)
}


def _variants(descriptor: Descriptor) -> list[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    count = max((len(oneof.fields) for oneof in descriptor.oneofs), default=1)
    return [fill(cls(), case) for case in range(count)]


# --- round trips -------------------------------------------------------------------------------


def test_every_v1_message_is_covered() -> None:
    expected = {
        "agentworker.v1.RpcRequest",
        "agentworker.v1.OpenChannelRequest.Batch",
        "agentworker.v1.OpenControlChannelResponse",
        "io.cloudevents.v1.CloudEvent.CloudEventAttributeValue",
    }
    assert expected <= ALL_MESSAGES.keys()
    assert len([n for n in ALL_MESSAGES if n.startswith("agentworker.v1.")]) >= 28


@pytest.mark.parametrize("full_name", sorted(ALL_MESSAGES))
def test_message_round_trips_with_every_field_set(full_name: str) -> None:
    descriptor = ALL_MESSAGES[full_name]
    cls = message_factory.GetMessageClass(descriptor)
    seen: set[str] = set()
    for variant in _variants(descriptor):
        set_names = {field.name for field, _ in variant.ListFields()}
        seen |= set_names
        for oneof in descriptor.oneofs:
            assert variant.WhichOneof(oneof.name) is not None, oneof.name
        wire = variant.SerializeToString()
        decoded = cls.FromString(wire)
        assert decoded == variant
        assert {field.name for field, _ in decoded.ListFields()} == set_names
        assert decoded.SerializeToString(deterministic=True) == variant.SerializeToString(
            deterministic=True
        )
    assert seen == {field.name for field in descriptor.fields}, "some field was never set"


def test_batch_frames_nest_frames_in_order() -> None:
    frames = [
        agentworker_pb2.OpenChannelRequest(
            request=agentworker_pb2.RpcRequest(
                request_id="1",
                target=agentworker_pb2.AgentId(type="echo", key="a"),
                payload=agentworker_pb2.Payload(
                    data_type="Ping", data_content_type="application/json", data=b"{}"
                ),
                timeout_ms=250,
            )
        ),
        agentworker_pb2.OpenChannelRequest(
            cloud_event=cloudevents_pb2.CloudEvent(
                id="e1", source="s", spec_version="1.0", type="t", text_data="hi"
            )
        ),
        agentworker_pb2.OpenChannelRequest(
            response=agentworker_pb2.RpcResponse(
                request_id="9", error="boom", error_code=agentworker_pb2.ERROR_CODE_HANDLER_FAILED
            )
        ),
    ]
    batch = agentworker_pb2.OpenChannelRequest(
        batch=agentworker_pb2.OpenChannelRequest.Batch(messages=frames)
    )
    decoded = agentworker_pb2.OpenChannelRequest.FromString(batch.SerializeToString())
    assert decoded.WhichOneof("message") == "batch"
    assert [frame.WhichOneof("message") for frame in decoded.batch.messages] == [
        "request",
        "cloud_event",
        "response",
    ]
    assert list(decoded.batch.messages) == frames

    notice = agentworker_pb2.Notice(
        code=agentworker_pb2.ERROR_CODE_OVERLOADED, message="queue full", event_id="e1"
    )
    outbound = agentworker_pb2.OpenChannelResponse(
        batch=agentworker_pb2.OpenChannelResponse.Batch(
            messages=[agentworker_pb2.OpenChannelResponse(notice=notice)]
        )
    )
    decoded_out = agentworker_pb2.OpenChannelResponse.FromString(outbound.SerializeToString())
    assert decoded_out.batch.messages[0].notice == notice


def test_map_fields_round_trip() -> None:
    request = agentworker_pb2.RpcRequest(
        request_id="r", metadata={"traceparent": "00-abc-def-01", "tenant": "t1", "": "empty key"}
    )
    decoded = agentworker_pb2.RpcRequest.FromString(request.SerializeToString())
    assert dict(decoded.metadata) == {
        "traceparent": "00-abc-def-01",
        "tenant": "t1",
        "": "empty key",
    }

    value = cloudevents_pb2.CloudEvent.CloudEventAttributeValue
    attributes = {
        "flag": value(ce_boolean=False),
        "count": value(ce_integer=-3),
        "datacontenttype": value(ce_string="application/json"),
        "blob": value(ce_bytes=b""),
        "dataschema": value(ce_uri="https://example.com/s"),
        "ref": value(ce_uri_ref="/r"),
        "time": value(ce_timestamp=timestamp_pb2.Timestamp(seconds=1)),
    }
    event = cloudevents_pb2.CloudEvent(id="1", attributes=attributes)
    decoded_event = cloudevents_pb2.CloudEvent.FromString(event.SerializeToString())
    assert dict(decoded_event.attributes) == attributes
    # A oneof case set to its default value is still set on the wire.
    assert decoded_event.attributes["flag"].WhichOneof("attr") == "ce_boolean"
    assert decoded_event.attributes["blob"].WhichOneof("attr") == "ce_bytes"


@pytest.mark.parametrize(
    ("cls", "field", "empty_value"),
    [
        (agentworker_pb2.RpcRequest, "source", agentworker_pb2.AgentId()),
        (agentworker_pb2.OpenControlChannelRequest, "respond_to", ""),
        (agentworker_pb2.OpenControlChannelResponse, "respond_to", ""),
        (agentworker_pb2.SaveStateResponse, "error", ""),
        (agentworker_pb2.LoadStateResponse, "error", ""),
    ],
)
def test_optional_fields_keep_presence(cls: type[Message], field: str, empty_value: Any) -> None:
    absent = cls.FromString(cls().SerializeToString())
    assert not absent.HasField(field)

    present = cls()
    if isinstance(empty_value, Message):
        getattr(present, field).CopyFrom(empty_value)
        getattr(present, field).SetInParent()
    else:
        setattr(present, field, empty_value)
    wire = present.SerializeToString()
    assert wire, "an explicitly set empty optional field must be on the wire"
    assert cls.FromString(wire).HasField(field)


# --- service -----------------------------------------------------------------------------------

EXPECTED_RPCS = {
    "OpenChannel": ("OpenChannelRequest", "OpenChannelResponse", True, True),
    "OpenControlChannel": ("OpenControlChannelRequest", "OpenControlChannelResponse", True, True),
    "RegisterAgent": ("RegisterAgentRequest", "RegisterAgentResponse", False, False),
    "AddSubscription": ("AddSubscriptionRequest", "AddSubscriptionResponse", False, False),
    "RemoveSubscription": ("RemoveSubscriptionRequest", "RemoveSubscriptionResponse", False, False),
    "GetSubscriptions": ("GetSubscriptionsRequest", "GetSubscriptionsResponse", False, False),
}


def test_service_descriptor_lists_the_six_rpcs() -> None:
    service = agentworker_pb2.DESCRIPTOR.services_by_name["AgentRpcService"]
    assert service.full_name == "agentworker.v1.AgentRpcService"
    actual = {
        method.name: (
            method.input_type.name,
            method.output_type.name,
            method.client_streaming,
            method.server_streaming,
        )
        for method in service.methods
    }
    assert actual == EXPECTED_RPCS
    for method in service.methods:
        assert method.input_type.file is agentworker_pb2.DESCRIPTOR
        assert method.output_type.file is agentworker_pb2.DESCRIPTOR


class _RecordingChannel:
    """Stands in for a grpc.Channel: records which call shapes the stub asks for."""

    def __init__(self) -> None:
        self.calls: dict[str, str] = {}

    def _recorder(self, kind: str) -> Callable[..., object]:
        def record(path: str, *args: object, **kwargs: object) -> object:
            self.calls[path] = kind
            return object()

        return record

    def __getattr__(self, kind: str) -> Callable[..., object]:
        if kind in {"unary_unary", "unary_stream", "stream_unary", "stream_stream"}:
            return self._recorder(kind)
        raise AttributeError(kind)


def test_grpc_stub_uses_canonical_method_paths() -> None:
    channel = _RecordingChannel()
    agentworker_pb2_grpc.AgentRpcServiceStub(channel)
    kinds = {(True, True): "stream_stream", (False, False): "unary_unary"}
    assert channel.calls == {
        f"/agentworker.v1.AgentRpcService/{name}": kinds[(client, server)]
        for name, (_, _, client, server) in EXPECTED_RPCS.items()
    }


def test_grpc_servicer_registration_exists() -> None:
    module: ModuleType = agentworker_pb2_grpc
    assert callable(module.add_AgentRpcServiceServicer_to_server)
    servicer = module.AgentRpcServiceServicer
    assert set(EXPECTED_RPCS) <= set(dir(servicer))
