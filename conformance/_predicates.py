"""Predicates over host-to-worker frames, for FrameStream.expect."""

from __future__ import annotations

from collections.abc import Callable

from agentworker.v1 import agentworker_pb2 as pb

__all__ = ["case_is", "event_with_id", "is_event", "response_to"]

FramePredicate = Callable[[pb.OpenChannelResponse], bool]


def case_is(case: str) -> FramePredicate:
    """Match frames whose oneof case is ``case`` ("request", "notice", ...)."""
    return lambda frame: bool(frame.WhichOneof("message") == case)


def is_event(frame: pb.OpenChannelResponse) -> bool:
    """Match cloud_event frames."""
    return bool(frame.WhichOneof("message") == "cloud_event")


def event_with_id(event_id: str) -> FramePredicate:
    """Match the cloud_event frame carrying event ``event_id``."""
    return lambda frame: is_event(frame) and frame.cloud_event.id == event_id


def response_to(request_id: str) -> FramePredicate:
    """Match the response frame for ``request_id``."""
    return lambda frame: bool(
        frame.WhichOneof("message") == "response" and frame.response.request_id == request_id
    )
