from agentworker.cloudevents.v1 import cloudevents_pb2 as _cloudevents_pb2
from google.protobuf import any_pb2 as _any_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_UNKNOWN_TARGET: _ClassVar[ErrorCode]
    ERROR_CODE_TARGET_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_DEADLINE_EXCEEDED: _ClassVar[ErrorCode]
    ERROR_CODE_OVERLOADED: _ClassVar[ErrorCode]
    ERROR_CODE_HANDLER_FAILED: _ClassVar[ErrorCode]
    ERROR_CODE_UNSUPPORTED_MESSAGE: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_REQUEST: _ClassVar[ErrorCode]
    ERROR_CODE_PERMISSION_DENIED: _ClassVar[ErrorCode]
    ERROR_CODE_SHUTTING_DOWN: _ClassVar[ErrorCode]

class Capability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPABILITY_UNSPECIFIED: _ClassVar[Capability]
    CAPABILITY_BATCHING: _ClassVar[Capability]
    CAPABILITY_STATE: _ClassVar[Capability]
    CAPABILITY_RECONNECT: _ClassVar[Capability]
    CAPABILITY_TLS: _ClassVar[Capability]
    CAPABILITY_MUTUAL_TLS: _ClassVar[Capability]
    CAPABILITY_BEARER_TOKEN: _ClassVar[Capability]
    CAPABILITY_SHARED_AGENT_TYPES: _ClassVar[Capability]
    CAPABILITY_TRACE_CONTEXT: _ClassVar[Capability]

class SecurityMechanism(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECURITY_MECHANISM_UNSPECIFIED: _ClassVar[SecurityMechanism]
    SECURITY_MECHANISM_TLS: _ClassVar[SecurityMechanism]
    SECURITY_MECHANISM_MUTUAL_TLS: _ClassVar[SecurityMechanism]
    SECURITY_MECHANISM_BEARER_TOKEN: _ClassVar[SecurityMechanism]
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_UNKNOWN_TARGET: ErrorCode
ERROR_CODE_TARGET_UNAVAILABLE: ErrorCode
ERROR_CODE_DEADLINE_EXCEEDED: ErrorCode
ERROR_CODE_OVERLOADED: ErrorCode
ERROR_CODE_HANDLER_FAILED: ErrorCode
ERROR_CODE_UNSUPPORTED_MESSAGE: ErrorCode
ERROR_CODE_INVALID_REQUEST: ErrorCode
ERROR_CODE_PERMISSION_DENIED: ErrorCode
ERROR_CODE_SHUTTING_DOWN: ErrorCode
CAPABILITY_UNSPECIFIED: Capability
CAPABILITY_BATCHING: Capability
CAPABILITY_STATE: Capability
CAPABILITY_RECONNECT: Capability
CAPABILITY_TLS: Capability
CAPABILITY_MUTUAL_TLS: Capability
CAPABILITY_BEARER_TOKEN: Capability
CAPABILITY_SHARED_AGENT_TYPES: Capability
CAPABILITY_TRACE_CONTEXT: Capability
SECURITY_MECHANISM_UNSPECIFIED: SecurityMechanism
SECURITY_MECHANISM_TLS: SecurityMechanism
SECURITY_MECHANISM_MUTUAL_TLS: SecurityMechanism
SECURITY_MECHANISM_BEARER_TOKEN: SecurityMechanism

class AgentId(_message.Message):
    __slots__ = ("type", "key")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    type: str
    key: str
    def __init__(self, type: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ("data_type", "data_content_type", "data")
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    data_type: str
    data_content_type: str
    data: bytes
    def __init__(self, data_type: _Optional[str] = ..., data_content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class RpcRequest(_message.Message):
    __slots__ = ("request_id", "source", "target", "method", "payload", "metadata", "timeout_ms")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    source: AgentId
    target: AgentId
    method: str
    payload: Payload
    metadata: _containers.ScalarMap[str, str]
    timeout_ms: int
    def __init__(self, request_id: _Optional[str] = ..., source: _Optional[_Union[AgentId, _Mapping]] = ..., target: _Optional[_Union[AgentId, _Mapping]] = ..., method: _Optional[str] = ..., payload: _Optional[_Union[Payload, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class RpcResponse(_message.Message):
    __slots__ = ("request_id", "payload", "error", "metadata", "error_code")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    payload: Payload
    error: str
    metadata: _containers.ScalarMap[str, str]
    error_code: ErrorCode
    def __init__(self, request_id: _Optional[str] = ..., payload: _Optional[_Union[Payload, _Mapping]] = ..., error: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., error_code: _Optional[_Union[ErrorCode, str]] = ...) -> None: ...

class ChannelHello(_message.Message):
    __slots__ = ("protocol_version", "capabilities", "implementation", "max_batch_messages", "max_message_bytes")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    implementation: str
    max_batch_messages: int
    max_message_bytes: int
    def __init__(self, protocol_version: _Optional[int] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., implementation: _Optional[str] = ..., max_batch_messages: _Optional[int] = ..., max_message_bytes: _Optional[int] = ...) -> None: ...

class ChannelWelcome(_message.Message):
    __slots__ = ("protocol_version", "capabilities", "implementation", "default_rpc_timeout_ms", "max_batch_messages", "max_message_bytes", "connection_id", "max_calls_in_flight", "security_mechanisms", "channel_wait_ms", "max_rpc_timeout_ms")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RPC_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_CALLS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SECURITY_MECHANISMS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RPC_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    implementation: str
    default_rpc_timeout_ms: int
    max_batch_messages: int
    max_message_bytes: int
    connection_id: str
    max_calls_in_flight: int
    security_mechanisms: _containers.RepeatedScalarFieldContainer[SecurityMechanism]
    channel_wait_ms: int
    max_rpc_timeout_ms: int
    def __init__(self, protocol_version: _Optional[int] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., implementation: _Optional[str] = ..., default_rpc_timeout_ms: _Optional[int] = ..., max_batch_messages: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., connection_id: _Optional[str] = ..., max_calls_in_flight: _Optional[int] = ..., security_mechanisms: _Optional[_Iterable[_Union[SecurityMechanism, str]]] = ..., channel_wait_ms: _Optional[int] = ..., max_rpc_timeout_ms: _Optional[int] = ...) -> None: ...

class OpenChannelRequest(_message.Message):
    __slots__ = ("request", "response", "cloud_event", "batch")
    class Batch(_message.Message):
        __slots__ = ("messages",)
        MESSAGES_FIELD_NUMBER: _ClassVar[int]
        messages: _containers.RepeatedCompositeFieldContainer[OpenChannelRequest]
        def __init__(self, messages: _Optional[_Iterable[_Union[OpenChannelRequest, _Mapping]]] = ...) -> None: ...
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_EVENT_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    request: RpcRequest
    response: RpcResponse
    cloud_event: _cloudevents_pb2.CloudEvent
    batch: OpenChannelRequest.Batch
    def __init__(self, request: _Optional[_Union[RpcRequest, _Mapping]] = ..., response: _Optional[_Union[RpcResponse, _Mapping]] = ..., cloud_event: _Optional[_Union[_cloudevents_pb2.CloudEvent, _Mapping]] = ..., batch: _Optional[_Union[OpenChannelRequest.Batch, _Mapping]] = ...) -> None: ...

class OpenChannelResponse(_message.Message):
    __slots__ = ("request", "response", "cloud_event", "batch", "notice")
    class Batch(_message.Message):
        __slots__ = ("messages",)
        MESSAGES_FIELD_NUMBER: _ClassVar[int]
        messages: _containers.RepeatedCompositeFieldContainer[OpenChannelResponse]
        def __init__(self, messages: _Optional[_Iterable[_Union[OpenChannelResponse, _Mapping]]] = ...) -> None: ...
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_EVENT_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    request: RpcRequest
    response: RpcResponse
    cloud_event: _cloudevents_pb2.CloudEvent
    batch: OpenChannelResponse.Batch
    notice: Notice
    def __init__(self, request: _Optional[_Union[RpcRequest, _Mapping]] = ..., response: _Optional[_Union[RpcResponse, _Mapping]] = ..., cloud_event: _Optional[_Union[_cloudevents_pb2.CloudEvent, _Mapping]] = ..., batch: _Optional[_Union[OpenChannelResponse.Batch, _Mapping]] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("code", "message", "event_id", "request_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    event_id: str
    request_id: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., event_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class OpenControlChannelRequest(_message.Message):
    __slots__ = ("rpc_id", "destination", "respond_to", "rpc_message")
    RPC_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    RESPOND_TO_FIELD_NUMBER: _ClassVar[int]
    RPC_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rpc_id: str
    destination: str
    respond_to: str
    rpc_message: _any_pb2.Any
    def __init__(self, rpc_id: _Optional[str] = ..., destination: _Optional[str] = ..., respond_to: _Optional[str] = ..., rpc_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class OpenControlChannelResponse(_message.Message):
    __slots__ = ("rpc_id", "destination", "respond_to", "rpc_message")
    RPC_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    RESPOND_TO_FIELD_NUMBER: _ClassVar[int]
    RPC_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rpc_id: str
    destination: str
    respond_to: str
    rpc_message: _any_pb2.Any
    def __init__(self, rpc_id: _Optional[str] = ..., destination: _Optional[str] = ..., respond_to: _Optional[str] = ..., rpc_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class SaveStateRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: AgentId
    def __init__(self, agent_id: _Optional[_Union[AgentId, _Mapping]] = ...) -> None: ...

class SaveStateResponse(_message.Message):
    __slots__ = ("state", "error", "error_code")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    state: str
    error: str
    error_code: ErrorCode
    def __init__(self, state: _Optional[str] = ..., error: _Optional[str] = ..., error_code: _Optional[_Union[ErrorCode, str]] = ...) -> None: ...

class LoadStateRequest(_message.Message):
    __slots__ = ("agent_id", "state")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    agent_id: AgentId
    state: str
    def __init__(self, agent_id: _Optional[_Union[AgentId, _Mapping]] = ..., state: _Optional[str] = ...) -> None: ...

class LoadStateResponse(_message.Message):
    __slots__ = ("error", "error_code")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    error: str
    error_code: ErrorCode
    def __init__(self, error: _Optional[str] = ..., error_code: _Optional[_Union[ErrorCode, str]] = ...) -> None: ...

class TypeSubscription(_message.Message):
    __slots__ = ("topic_type", "agent_type")
    TOPIC_TYPE_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    topic_type: str
    agent_type: str
    def __init__(self, topic_type: _Optional[str] = ..., agent_type: _Optional[str] = ...) -> None: ...

class TypePrefixSubscription(_message.Message):
    __slots__ = ("topic_type_prefix", "agent_type")
    TOPIC_TYPE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    topic_type_prefix: str
    agent_type: str
    def __init__(self, topic_type_prefix: _Optional[str] = ..., agent_type: _Optional[str] = ...) -> None: ...

class Subscription(_message.Message):
    __slots__ = ("id", "type_subscription", "type_prefix_subscription")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_PREFIX_SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    type_subscription: TypeSubscription
    type_prefix_subscription: TypePrefixSubscription
    def __init__(self, id: _Optional[str] = ..., type_subscription: _Optional[_Union[TypeSubscription, _Mapping]] = ..., type_prefix_subscription: _Optional[_Union[TypePrefixSubscription, _Mapping]] = ...) -> None: ...

class RegisterAgentRequest(_message.Message):
    __slots__ = ("type",)
    TYPE_FIELD_NUMBER: _ClassVar[int]
    type: str
    def __init__(self, type: _Optional[str] = ...) -> None: ...

class RegisterAgentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddSubscriptionRequest(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class AddSubscriptionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveSubscriptionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RemoveSubscriptionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSubscriptionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[Subscription]
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[Subscription, _Mapping]]] = ...) -> None: ...
