"""Message serialization: type names, encodings and the registry that maps them to classes.

Two encodings exist (AWP-PUB-020): JSON (`application/json`, the type name is an application
name, by default the class name) and protobuf (`application/x-protobuf`, the type name is the
message's full name and the bytes are a serialized `google.protobuf.Any`, AWP-PUB-021).
The registry is keyed by (type name, content type); an unknown pair raises
`UnknownMessageTypeError` rather than being dropped.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import types
import typing
from collections.abc import Callable
from typing import Any, Protocol, cast

from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

__all__ = [
    "JSON",
    "NONE_TYPE_NAME",
    "PROTOBUF",
    "DataclassJsonSerializer",
    "MessageSerializer",
    "NoneSerializer",
    "ProtobufSerializer",
    "PydanticJsonSerializer",
    "SerializationError",
    "SerializationRegistry",
    "SerializedMessage",
    "UnknownMessageTypeError",
    "serializer_for",
]

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
NONE_TYPE_NAME = "NoneType"
_ANY_PREFIX = "type.googleapis.com/"


class SerializationError(Exception):
    """A message could not be encoded or decoded."""


class UnknownMessageTypeError(SerializationError):
    """No serializer is registered for a type name and content type (or Python class)."""

    def __init__(self, type_name: str, content_type: str | None = None) -> None:
        where = f" with content type {content_type!r}" if content_type else ""
        super().__init__(
            f"unknown message type {type_name!r}{where}: register it with "
            "Worker.add_message_type() or SerializationRegistry.add_type()"
        )
        self.type_name = type_name
        self.content_type = content_type


@dataclasses.dataclass(frozen=True, slots=True)
class SerializedMessage:
    """An encoded message: what goes into a Payload or a CloudEvent."""

    type_name: str
    content_type: str
    data: bytes


class MessageSerializer(Protocol):
    """Encodes and decodes one Python class under one (type name, content type)."""

    @property
    def type_name(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def python_type(self) -> type: ...

    def serialize(self, message: object) -> bytes: ...

    def deserialize(self, data: bytes) -> object: ...


class DataclassJsonSerializer:
    """JSON for a dataclass; its fields become the JSON object's members."""

    def __init__(self, cls: type, type_name: str | None = None) -> None:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"{cls!r} is not a dataclass")
        self._cls = cls
        self._type_name = type_name or cls.__name__

    @property
    def type_name(self) -> str:
        return self._type_name

    @property
    def content_type(self) -> str:
        return JSON

    @property
    def python_type(self) -> type:
        return self._cls

    def serialize(self, message: object) -> bytes:
        if not isinstance(message, self._cls) or isinstance(message, type):
            raise SerializationError(f"expected {self._cls.__name__}, got {type(message)!r}")
        return json.dumps(dataclasses.asdict(message), separators=(",", ":")).encode()

    def deserialize(self, data: bytes) -> object:
        try:
            fields = json.loads(data)
            if not isinstance(fields, dict):
                raise SerializationError(f"{self._type_name}: JSON object expected")
            return _build_dataclass(self._cls, fields)
        except (ValueError, TypeError) as exc:
            raise SerializationError(f"cannot decode {self._type_name}: {exc}") from exc


def _build_dataclass(cls: type, fields: dict[str, Any]) -> object:
    """Builds a dataclass from a JSON object, rebuilding nested dataclasses from the field
    type hints (also inside lists, dicts and optional fields); unknown members are ignored."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError:  # hints naming classes that cannot be resolved: no nested rebuilding
        hints = {}
    values = {
        f.name: _convert(hints.get(f.name, Any), fields[f.name])
        for f in dataclasses.fields(cls)
        if f.name in fields
    }
    return cls(**values)


def _convert(hint: Any, value: Any) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return _build_dataclass(hint, value)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (list, tuple, set, frozenset) and isinstance(value, list) and args:
        items = [_convert(args[0], item) for item in value]
        return items if origin is list else origin(items)
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {key: _convert(args[1], item) for key, item in value.items()}
    if origin in (typing.Union, types.UnionType) and value is not None:
        for arg in args:  # the first member that converts the value wins
            converted = _convert(arg, value)
            if converted is not value:
                return converted
    return value


class PydanticJsonSerializer:
    """JSON for a pydantic model (used only when pydantic is installed)."""

    def __init__(self, cls: type, type_name: str | None = None) -> None:
        self._cls: Any = cls
        self._type_name = type_name or cls.__name__

    @property
    def type_name(self) -> str:
        return self._type_name

    @property
    def content_type(self) -> str:
        return JSON

    @property
    def python_type(self) -> type:
        return cast(type, self._cls)

    def serialize(self, message: object) -> bytes:
        return cast(bytes, self._cls.model_dump_json(message).encode())

    def deserialize(self, data: bytes) -> object:
        try:
            return self._cls.model_validate_json(data)
        except ValueError as exc:
            raise SerializationError(f"cannot decode {self._type_name}: {exc}") from exc


class ProtobufSerializer:
    """Protobuf: the bytes are a serialized google.protobuf.Any wrapping the message."""

    def __init__(self, cls: type[Message]) -> None:
        self._cls = cls
        self._full_name: str = cls.DESCRIPTOR.full_name

    @property
    def type_name(self) -> str:
        return self._full_name

    @property
    def content_type(self) -> str:
        return PROTOBUF

    @property
    def python_type(self) -> type:
        return self._cls

    def serialize(self, message: object) -> bytes:
        if not isinstance(message, self._cls):
            raise SerializationError(f"expected {self._full_name}, got {type(message)!r}")
        return pack_any(message).SerializeToString()

    def deserialize(self, data: bytes) -> object:
        envelope = any_pb2.Any()
        try:
            envelope.ParseFromString(data)
        except DecodeError as exc:
            raise SerializationError(f"cannot decode Any for {self._full_name}: {exc}") from exc
        return self.unpack(envelope)

    def unpack(self, envelope: any_pb2.Any) -> Message:
        name = envelope.type_url.rsplit("/", 1)[-1]
        if name != self._full_name:
            raise SerializationError(f"Any holds {name!r}, expected {self._full_name!r}")
        message = self._cls()
        try:
            message.ParseFromString(envelope.value)
        except DecodeError as exc:
            raise SerializationError(f"cannot decode {self._full_name}: {exc}") from exc
        return message


class NoneSerializer:
    """The reply of a handler that returns nothing: JSON `null`, type name `NoneType`."""

    @property
    def type_name(self) -> str:
        return NONE_TYPE_NAME

    @property
    def content_type(self) -> str:
        return JSON

    @property
    def python_type(self) -> type:
        return type(None)

    def serialize(self, message: object) -> bytes:
        return b"null"

    def deserialize(self, data: bytes) -> object:
        return None


def pack_any(message: Message) -> any_pb2.Any:
    """Wraps a protobuf message in an Any with the standard type URL prefix."""
    return any_pb2.Any(
        type_url=_ANY_PREFIX + message.DESCRIPTOR.full_name,
        value=message.SerializeToString(),
    )


def _is_pydantic_model(cls: type) -> bool:
    try:
        pydantic = importlib.import_module("pydantic")
    except ImportError:
        return False
    base = cast(type, pydantic.BaseModel)
    return isinstance(cls, type) and issubclass(cls, base)


def serializer_for(cls: type, type_name: str | None = None) -> MessageSerializer:
    """Chooses the serializer for a class: protobuf message, dataclass or pydantic model."""
    if cls is type(None):
        return NoneSerializer()
    if isinstance(cls, type) and issubclass(cls, Message):
        if type_name is not None and type_name != cls.DESCRIPTOR.full_name:
            raise ValueError("a protobuf message's type name is its full name")
        return ProtobufSerializer(cls)
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        return DataclassJsonSerializer(cls, type_name)
    if _is_pydantic_model(cls):
        return PydanticJsonSerializer(cls, type_name)
    raise TypeError(
        f"cannot serialize {cls!r}: use a dataclass, a protobuf message or a pydantic model"
    )


class SerializationRegistry:
    """Maps (type name, content type) to serializers and Python classes to serializers."""

    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], MessageSerializer] = {}
        self._by_class: dict[type, MessageSerializer] = {}
        self.add(NoneSerializer())

    def add(self, serializer: MessageSerializer) -> None:
        """Registers a serializer; the latest one for a class is used to encode it."""
        self._by_name[(serializer.type_name, serializer.content_type)] = serializer
        self._by_class[serializer.python_type] = serializer

    def add_type(self, cls: type, type_name: str | None = None) -> None:
        """Registers a class with the serializer `serializer_for` picks."""
        existing = self._by_class.get(cls)
        if existing is not None and (type_name is None or existing.type_name == type_name):
            return
        self.add(serializer_for(cls, type_name))

    def knows(self, cls: type) -> bool:
        return cls in self._by_class

    def _serializer_of(self, message: object) -> MessageSerializer:
        cls = type(message)
        serializer = self._by_class.get(cls)
        if serializer is None:
            try:
                self.add_type(cls)
            except TypeError as exc:
                raise UnknownMessageTypeError(cls.__qualname__) from exc
            serializer = self._by_class[cls]
        return serializer

    def type_name_of(self, message: object) -> str:
        return self._serializer_of(message).type_name

    def serialize(self, message: object) -> SerializedMessage:
        """Encodes a message; classes not yet registered are registered on first use."""
        serializer = self._serializer_of(message)
        return SerializedMessage(
            serializer.type_name, serializer.content_type, serializer.serialize(message)
        )

    def lookup(self, type_name: str, content_type: str) -> MessageSerializer:
        """Returns the serializer for a pair, or raises UnknownMessageTypeError.

        A protobuf message that is not registered but whose module has been imported (its
        descriptor is in the default pool) is found and registered automatically.
        """
        key = (type_name, normalize_content_type(content_type))
        serializer = self._by_name.get(key)
        if serializer is not None:
            return serializer
        if key[1] == PROTOBUF:
            cls = _protobuf_class(type_name)
            if cls is not None:
                found = ProtobufSerializer(cls)
                self._by_name[key] = found
                self._by_class.setdefault(cls, found)
                return found
        raise UnknownMessageTypeError(type_name, content_type)

    def deserialize(self, type_name: str, content_type: str, data: bytes) -> object:
        return self.lookup(type_name, content_type).deserialize(data)

    def deserialize_any(self, envelope: any_pb2.Any) -> object:
        """Decodes a CloudEvent's proto_data."""
        name = envelope.type_url.rsplit("/", 1)[-1]
        serializer = self.lookup(name, PROTOBUF)
        if isinstance(serializer, ProtobufSerializer):
            return serializer.unpack(envelope)
        return serializer.deserialize(envelope.SerializeToString())


def normalize_content_type(content_type: str) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json`; empty means JSON."""
    return content_type.split(";", 1)[0].strip().lower() or JSON


def _protobuf_class(full_name: str) -> type[Message] | None:
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return None
    get_class = cast(Callable[[Any], type[Message]], message_factory.GetMessageClass)
    return get_class(descriptor)
