"""Host cases: health and reflection services."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from conformance._cases import CaseFailure, Level
from conformance._host_context import HostContext
from conformance._wire import CANONICAL_SERVICE, describe, encode
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case("host/observability/health", requirements=["AWP-OBS-001"])
async def health(ctx: HostContext) -> None:
    """Procedure: call grpc.health.v1.Health/Check for service "" and for
    `agentworker.v1.AgentRpcService`.

    Asserts: both report SERVING."""
    probe = ctx.worker("health")
    for service in ("", CANONICAL_SERVICE):
        code, details, response = await probe.unary(
            "",
            health_pb2.HealthCheckRequest(service=service),
            health_pb2.HealthCheckResponse,
            path="/grpc.health.v1.Health/Check",
        )
        with ctx.step("AWP-OBS-001", f"Health/Check({service!r}) reports SERVING"):
            if code is not grpc.StatusCode.OK or response is None:
                raise CaseFailure(f"Health/Check({service!r}) failed: {code.name} {details!r}")
            ctx.check(
                response.status == health_pb2.HealthCheckResponse.SERVING,
                f"Health/Check({service!r}) status "
                f"{health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}",
            )


@host_case(
    "host/observability/reflection",
    requirements=["AWP-OBS-002"],
    level=Level.QUALITY,
)
async def reflection(ctx: HostContext) -> None:
    """Procedure: call grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo with
    `list_services`.

    Asserts: the answer lists `agentworker.v1.AgentRpcService`."""
    probe = ctx.worker("reflection")
    method: Any = probe.channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=encode,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    ctx.trace.sent("reflection", describe(request))
    try:
        call = method(iter([request]), timeout=ctx.seconds(5.0))
        response = await call.read()
    except grpc.aio.AioRpcError as exc:
        ctx.decide("AWP-OBS-002", "reflection answers", False, f"failed: {exc.code().name}")
        return
    ctx.check(
        isinstance(response, reflection_pb2.ServerReflectionResponse),
        "no reflection response",
    )
    ctx.trace.received("reflection", describe(response))
    names = [s.name for s in response.list_services_response.service]
    ctx.check(CANONICAL_SERVICE in names, f"reflection lists {names} (AWP-OBS-002)")
