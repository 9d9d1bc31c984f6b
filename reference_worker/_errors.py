"""Typed errors for failed calls, one class per protocol error code (AWP-ERR-001)."""

from __future__ import annotations

from typing import ClassVar

from agentworker.v1 import agentworker_pb2

__all__ = [
    "AgentWorkerError",
    "DeadlineExceededError",
    "HandlerFailedError",
    "InvalidRequestError",
    "OverloadedError",
    "PermissionDeniedError",
    "ShuttingDownError",
    "TargetUnavailableError",
    "UnknownTargetError",
    "UnsupportedMessageError",
    "error_for_code",
]

ErrorCode = agentworker_pb2.ErrorCode


class AgentWorkerError(Exception):
    """Base class of every error a call can end with; `code` is the protocol ErrorCode."""

    default_code: ClassVar[ErrorCode] = agentworker_pb2.ERROR_CODE_HANDLER_FAILED

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code: ErrorCode = self.default_code if code is None else code


class UnknownTargetError(AgentWorkerError):
    """No worker serves the target agent type."""

    default_code = agentworker_pb2.ERROR_CODE_UNKNOWN_TARGET


class TargetUnavailableError(AgentWorkerError):
    """The target's worker, or this worker's own channel, went away before the answer."""

    default_code = agentworker_pb2.ERROR_CODE_TARGET_UNAVAILABLE


class DeadlineExceededError(AgentWorkerError):
    """The call's deadline passed before a response arrived."""

    default_code = agentworker_pb2.ERROR_CODE_DEADLINE_EXCEEDED


class OverloadedError(AgentWorkerError):
    """A bounded queue on the path was full."""

    default_code = agentworker_pb2.ERROR_CODE_OVERLOADED


class HandlerFailedError(AgentWorkerError):
    """The target's handler raised (or a legacy peer reported an error)."""

    default_code = agentworker_pb2.ERROR_CODE_HANDLER_FAILED


class UnsupportedMessageError(AgentWorkerError):
    """The target has no handler for the message type, or could not decode it."""

    default_code = agentworker_pb2.ERROR_CODE_UNSUPPORTED_MESSAGE


class InvalidRequestError(AgentWorkerError):
    """The host found the request malformed."""

    default_code = agentworker_pb2.ERROR_CODE_INVALID_REQUEST


class PermissionDeniedError(AgentWorkerError):
    """The host's security policy forbids the call."""

    default_code = agentworker_pb2.ERROR_CODE_PERMISSION_DENIED


class ShuttingDownError(AgentWorkerError):
    """The host or the target worker is draining and takes no new work."""

    default_code = agentworker_pb2.ERROR_CODE_SHUTTING_DOWN


_BY_CODE: dict[int, type[AgentWorkerError]] = {
    cls.default_code: cls
    for cls in (
        UnknownTargetError,
        TargetUnavailableError,
        DeadlineExceededError,
        OverloadedError,
        HandlerFailedError,
        UnsupportedMessageError,
        InvalidRequestError,
        PermissionDeniedError,
        ShuttingDownError,
    )
}


def error_for_code(code: int, message: str) -> AgentWorkerError:
    """Builds the typed error for a response's code.

    An unspecified code (a legacy peer's error, AWP-ERR-003) and any code this version does not
    know (AWP-VER-002) read as ERROR_CODE_HANDLER_FAILED.
    """
    cls = _BY_CODE.get(code, HandlerFailedError)
    return cls(message or "call failed", code=cls.default_code)
