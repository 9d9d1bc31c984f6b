from agentworker.v1 import agentworker_pb2 as _agentworker_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODING_UNSPECIFIED: _ClassVar[Encoding]
    ENCODING_JSON: _ClassVar[Encoding]
    ENCODING_PROTOBUF: _ClassVar[Encoding]
ENCODING_UNSPECIFIED: Encoding
ENCODING_JSON: Encoding
ENCODING_PROTOBUF: Encoding

class Ping(_message.Message):
    __slots__ = ("text", "seq", "stall_ms")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STALL_MS_FIELD_NUMBER: _ClassVar[int]
    text: str
    seq: int
    stall_ms: int
    def __init__(self, text: _Optional[str] = ..., seq: _Optional[int] = ..., stall_ms: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("text", "seq", "agent_key")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    text: str
    seq: int
    agent_key: str
    def __init__(self, text: _Optional[str] = ..., seq: _Optional[int] = ..., agent_key: _Optional[str] = ...) -> None: ...

class EventReceipt(_message.Message):
    __slots__ = ("agent_key", "topic_type", "topic_source", "text", "seq", "encoding", "sender", "event_id")
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    TOPIC_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    topic_type: str
    topic_source: str
    text: str
    seq: int
    encoding: Encoding
    sender: _agentworker_pb2.AgentId
    event_id: str
    def __init__(self, agent_key: _Optional[str] = ..., topic_type: _Optional[str] = ..., topic_source: _Optional[str] = ..., text: _Optional[str] = ..., seq: _Optional[int] = ..., encoding: _Optional[_Union[Encoding, str]] = ..., sender: _Optional[_Union[_agentworker_pb2.AgentId, _Mapping]] = ..., event_id: _Optional[str] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("case_id", "deadline_ms", "publish", "call", "fail", "stall", "remember", "recall")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    FAIL_FIELD_NUMBER: _ClassVar[int]
    STALL_FIELD_NUMBER: _ClassVar[int]
    REMEMBER_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    deadline_ms: int
    publish: PublishAction
    call: CallAction
    fail: FailAction
    stall: StallAction
    remember: RememberAction
    recall: RecallAction
    def __init__(self, case_id: _Optional[str] = ..., deadline_ms: _Optional[int] = ..., publish: _Optional[_Union[PublishAction, _Mapping]] = ..., call: _Optional[_Union[CallAction, _Mapping]] = ..., fail: _Optional[_Union[FailAction, _Mapping]] = ..., stall: _Optional[_Union[StallAction, _Mapping]] = ..., remember: _Optional[_Union[RememberAction, _Mapping]] = ..., recall: _Optional[_Union[RecallAction, _Mapping]] = ...) -> None: ...

class PublishAction(_message.Message):
    __slots__ = ("topic_type", "topic_source", "count", "first_seq", "text", "encoding")
    TOPIC_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_SOURCE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    topic_type: str
    topic_source: str
    count: int
    first_seq: int
    text: str
    encoding: Encoding
    def __init__(self, topic_type: _Optional[str] = ..., topic_source: _Optional[str] = ..., count: _Optional[int] = ..., first_seq: _Optional[int] = ..., text: _Optional[str] = ..., encoding: _Optional[_Union[Encoding, str]] = ...) -> None: ...

class CallAction(_message.Message):
    __slots__ = ("target", "ping", "encoding", "timeout_ms")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    target: _agentworker_pb2.AgentId
    ping: Ping
    encoding: Encoding
    timeout_ms: int
    def __init__(self, target: _Optional[_Union[_agentworker_pb2.AgentId, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., encoding: _Optional[_Union[Encoding, str]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class FailAction(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class StallAction(_message.Message):
    __slots__ = ("duration_ms",)
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    duration_ms: int
    def __init__(self, duration_ms: _Optional[int] = ...) -> None: ...

class RememberAction(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: str
    def __init__(self, value: _Optional[str] = ...) -> None: ...

class RecallAction(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("case_id", "published", "call", "stalled_ms", "remembered", "recalled")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    STALLED_MS_FIELD_NUMBER: _ClassVar[int]
    REMEMBERED_FIELD_NUMBER: _ClassVar[int]
    RECALLED_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    published: int
    call: CallOutcome
    stalled_ms: int
    remembered: str
    recalled: str
    def __init__(self, case_id: _Optional[str] = ..., published: _Optional[int] = ..., call: _Optional[_Union[CallOutcome, _Mapping]] = ..., stalled_ms: _Optional[int] = ..., remembered: _Optional[str] = ..., recalled: _Optional[str] = ...) -> None: ...

class CallOutcome(_message.Message):
    __slots__ = ("pong", "error_code", "error_message", "encoding")
    PONG_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    pong: Pong
    error_code: _agentworker_pb2.ErrorCode
    error_message: str
    encoding: Encoding
    def __init__(self, pong: _Optional[_Union[Pong, _Mapping]] = ..., error_code: _Optional[_Union[_agentworker_pb2.ErrorCode, str]] = ..., error_message: _Optional[str] = ..., encoding: _Optional[_Union[Encoding, str]] = ...) -> None: ...
