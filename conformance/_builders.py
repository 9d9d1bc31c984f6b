"""Builders for the messages cases send: payloads, events, requests, subscriptions."""

from __future__ import annotations

import uuid

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb

__all__ = [
    "event",
    "json_payload",
    "prefix_subscription",
    "rpc_request",
    "type_subscription",
]


def json_payload(data_type: str, text: str) -> pb.Payload:
    """Return a JSON payload holding ``text``."""
    return pb.Payload(data_type=data_type, data_content_type="application/json", data=text.encode())


def event(topic_type: str, source: str, text: str, *, event_id: str | None = None) -> ce.CloudEvent:
    """Return a valid CloudEvent as a worker publishes it (AWP-PUB-001), JSON data ``text``."""
    ev = ce.CloudEvent(
        id=event_id if event_id is not None else str(uuid.uuid4()),
        source=source,
        spec_version="1.0",
        type=topic_type,
        binary_data=text.encode(),
    )
    for key, value in (
        ("datacontenttype", "application/json"),
        ("dataschema", "Note"),
        ("agagentsendertype", "conformance"),
        ("agagentsenderkey", "harness"),
        ("agmsgkind", "publish"),
    ):
        ev.attributes[key].ce_string = value
    return ev


def rpc_request(
    request_id: str,
    target_type: str,
    target_key: str,
    text: str,
    *,
    timeout_ms: int = 0,
) -> pb.RpcRequest:
    """Return an RPC request with a JSON ``Note`` payload."""
    return pb.RpcRequest(
        request_id=request_id,
        target=pb.AgentId(type=target_type, key=target_key),
        payload=json_payload("Note", text),
        timeout_ms=timeout_ms,
    )


def type_subscription(sub_id: str, topic_type: str, agent_type: str) -> pb.Subscription:
    """Return a TypeSubscription."""
    return pb.Subscription(
        id=sub_id,
        type_subscription=pb.TypeSubscription(topic_type=topic_type, agent_type=agent_type),
    )


def prefix_subscription(sub_id: str, prefix: str, agent_type: str) -> pb.Subscription:
    """Return a TypePrefixSubscription."""
    return pb.Subscription(
        id=sub_id,
        type_prefix_subscription=pb.TypePrefixSubscription(
            topic_type_prefix=prefix, agent_type=agent_type
        ),
    )
