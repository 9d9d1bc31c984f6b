"""The standard gRPC health service (grpc.health.v1.Health) with Check and Watch."""

from __future__ import annotations

import asyncio
from typing import Any, Final, TypeAlias

import grpc
from grpc_health.v1 import health_pb2

SERVICE_NAME: Final = "grpc.health.v1.Health"
Status: TypeAlias = health_pb2.HealthCheckResponse.ServingStatus
SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: Final = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthService:
    """Serving status per service name ("" is the whole server)."""

    def __init__(self) -> None:
        self._statuses: dict[str, Status] = {}
        self._changed = asyncio.Event()
        self._closed = False

    def set(self, service: str, status: Status) -> None:
        """Set the status of ``service`` and wake watchers."""
        self._statuses[service] = status
        self._notify()

    def close(self) -> None:
        """End every Watch stream (the server is stopping)."""
        self._closed = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def Check(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ],
    ) -> health_pb2.HealthCheckResponse:
        """Return the current status of ``request.service``; NOT_FOUND if unknown."""
        status = self._statuses.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ],
    ) -> None:
        """Stream the status of ``request.service`` now and on every change."""
        last: Status | None = None
        while not self._closed:
            changed = self._changed
            status = self._statuses.get(request.service, SERVICE_UNKNOWN)
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            await changed.wait()

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """Return the generic handler that serves this health service."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    self.Check,
                    request_deserializer=health_pb2.HealthCheckRequest.FromString,
                    response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
                ),
                "Watch": grpc.unary_stream_rpc_method_handler(
                    self.Watch,
                    request_deserializer=health_pb2.HealthCheckRequest.FromString,
                    response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
                ),
            },
        )
