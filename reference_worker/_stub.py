"""Method handles for the host's service under its canonical or its legacy path."""

from __future__ import annotations

from typing import Any

import grpc.aio

from agentworker.v1 import agentworker_pb2

__all__ = ["CANONICAL_SERVICE", "LEGACY_SERVICE", "AgentRpcStub"]

CANONICAL_SERVICE = "agentworker.v1.AgentRpcService"
LEGACY_SERVICE = "agents.AgentRpc"  # AutoGen 0.4.6+ (AWP-VER-003, Appendix A)

_pb = agentworker_pb2


class AgentRpcStub:
    """Like the generated stub, but for any service path (the messages are wire-identical)."""

    def __init__(self, channel: grpc.aio.Channel, service: str = CANONICAL_SERVICE) -> None:
        prefix = f"/{service}/"
        self.OpenChannel: Any = channel.stream_stream(
            prefix + "OpenChannel",
            request_serializer=_pb.OpenChannelRequest.SerializeToString,
            response_deserializer=_pb.OpenChannelResponse.FromString,
        )
        self.OpenControlChannel: Any = channel.stream_stream(
            prefix + "OpenControlChannel",
            request_serializer=_pb.OpenControlChannelRequest.SerializeToString,
            response_deserializer=_pb.OpenControlChannelResponse.FromString,
        )
        self.RegisterAgent: Any = channel.unary_unary(
            prefix + "RegisterAgent",
            request_serializer=_pb.RegisterAgentRequest.SerializeToString,
            response_deserializer=_pb.RegisterAgentResponse.FromString,
        )
        self.AddSubscription: Any = channel.unary_unary(
            prefix + "AddSubscription",
            request_serializer=_pb.AddSubscriptionRequest.SerializeToString,
            response_deserializer=_pb.AddSubscriptionResponse.FromString,
        )
        self.RemoveSubscription: Any = channel.unary_unary(
            prefix + "RemoveSubscription",
            request_serializer=_pb.RemoveSubscriptionRequest.SerializeToString,
            response_deserializer=_pb.RemoveSubscriptionResponse.FromString,
        )
