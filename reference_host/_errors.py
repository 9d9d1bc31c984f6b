"""Errors the host raises while serving a call, and the gRPC status code of each.

Handlers raise these; the servicer turns them into a gRPC status through ``STATUS_CODES``, the
one table that maps our error types to status codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import grpc


class HostError(Exception):
    """Base class of the errors that end a call with a non-OK gRPC status."""


class InvalidArgument(HostError):
    """The call is malformed: missing metadata, empty or badly formed fields."""


class FailedPrecondition(HostError):
    """The call is well formed but the host's state does not allow it now."""


class AlreadyExists(HostError):
    """The thing the call would create is already held by someone else."""


class NotFound(HostError):
    """The thing the call names does not exist."""


class PermissionDenied(HostError):
    """The authenticated caller is not allowed to do this."""


class Unauthenticated(HostError):
    """The call carries no valid credentials."""


class ResourceExhausted(HostError):
    """A bounded resource (queue, table) is full."""


class Unavailable(HostError):
    """The host is shutting down or cannot serve the call now."""


STATUS_CODES: Final[Mapping[type[HostError], grpc.StatusCode]] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    NotFound: grpc.StatusCode.NOT_FOUND,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_code(error: HostError) -> grpc.StatusCode:
    """Return the gRPC status code for ``error`` (UNKNOWN for an unmapped subclass)."""
    for cls in type(error).__mro__:
        if issubclass(cls, HostError) and cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return grpc.StatusCode.UNKNOWN
