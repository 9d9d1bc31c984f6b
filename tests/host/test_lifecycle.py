"""Health, reflection, draining, metrics endpoint and the command line."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from prometheus_client.parser import text_string_to_metric_families

import reference_host
import reference_host._server as server_module
from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host, HostConfig
from reference_host._io_defaults import prefer_poll_io
from tests.host._raw import TIMEOUT_S, RawWorker, hello
from tests.host.conftest import ConnectWorker, StartHost

SERVICE = "agentworker.v1.AgentRpcService"
REPO = Path(__file__).resolve().parents[2]


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    response = await check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
    return int(response.status)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-OBS-001")
async def test_health_reports_serving(channel: grpc.aio.Channel) -> None:
    assert await _health(channel, "") == health_pb2.HealthCheckResponse.SERVING
    assert await _health(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _health(channel, "no.such.Service")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-OBS-002")
async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    stream = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = stream(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    responses = [response async for response in call]
    names = {service.name for service in responses[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names
    call = stream(iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)]))
    responses = [response async for response in call]
    assert responses[0].file_descriptor_response.file_descriptor_proto


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-015", "AWP-OBS-001")
async def test_draining_lets_in_flight_rpcs_finish_and_refuses_new_ones(
    host: Host, channel: grpc.aio.Channel, connect: ConnectWorker
) -> None:
    server = await connect("server", hello())
    await server.register("echo")
    caller = await connect("caller", hello())
    legacy = await connect("legacy")
    await caller.request("in-flight", "echo")
    forwarded = (await server.next()).request
    stopping = asyncio.ensure_future(host.stop(grace=TIMEOUT_S))
    notice = (await caller.next()).notice
    assert notice.code == pb.ERROR_CODE_SHUTTING_DOWN
    assert (await server.next()).notice.code == pb.ERROR_CODE_SHUTTING_DOWN
    assert await _health(channel, "") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await _health(channel, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    await caller.request("new", "echo")
    refused = (await caller.next()).response
    assert refused.request_id == "new"
    assert refused.error_code == pb.ERROR_CODE_SHUTTING_DOWN
    assert refused.error
    assert not stopping.done()
    await server.respond(forwarded.request_id, pb.Payload(data=b"made it"))
    assert (await caller.next()).response.payload.data == b"made it"
    await asyncio.wait_for(stopping, TIMEOUT_S * 2)
    for worker in (server, caller, legacy):
        assert await worker.wait_ended() == grpc.StatusCode.UNAVAILABLE
    # Legacy workers get no notices.
    assert all(not frame.HasField("notice") for frame in legacy.raw_frames)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-016")
async def test_rpcs_pending_at_the_end_of_the_grace_get_shutting_down(
    host: Host, connect: ConnectWorker
) -> None:
    server = await connect("server", hello())
    await server.register("echo")
    caller = await connect("caller", hello())
    await caller.request("stuck", "echo")
    await server.next()
    await asyncio.wait_for(host.stop(grace=0.2), TIMEOUT_S * 2)
    response = (await caller.next_of("response")).response
    assert response.request_id == "stuck"
    assert response.error_code == pb.ERROR_CODE_SHUTTING_DOWN
    assert await caller.wait_ended() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-OBS-003")
async def test_metrics_endpoint_serves_prometheus_text(start_host: StartHost) -> None:
    host = await start_host(metrics_address="127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        worker = await RawWorker(channel, "w").open(hello())
        await worker.request("x", "nobody")
        await worker.next()
        assert host.metrics_port
        status, body = await _http_get(host.metrics_port, "/metrics")
        assert status == 200
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        }
        assert samples[("agentworker_host_connections_open", ())] == 1
        assert samples[("agentworker_host_rpc_requests_total", ())] == 1
        assert samples[("agentworker_host_calls_in_flight", ())] == 0
        assert samples[("agentworker_host_queue_depth", ())] == 0
        code = (("code", "ERROR_CODE_UNKNOWN_TARGET"),)
        assert samples[("agentworker_host_rpc_errors_total", code)] == 1
        await worker.close()


async def _http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT_S)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), TIMEOUT_S)
    writer.close()
    await writer.wait_closed()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SEC-002")
async def test_unauthenticated_non_loopback_address_logs_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert server_module.is_loopback("127.0.0.1")
    assert server_module.is_loopback("::1")
    assert server_module.is_loopback("localhost")
    assert not server_module.is_loopback("0.0.0.0")
    assert not server_module.is_loopback("example.com")
    # Bind loopback but make the host believe otherwise, so the test stays on 127.0.0.1.
    monkeypatch.setattr(server_module, "is_loopback", lambda _host: False)
    host = Host("127.0.0.1:0", HostConfig(metrics_log_interval_s=0))
    with caplog.at_level(logging.WARNING, logger="reference_host"):
        await host.start()
    await host.stop()
    warnings = [r for r in caplog.records if r.getMessage() == "host.unauthenticated"]
    assert len(warnings) == 1


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SEC-002")
async def test_unauthenticated_loopback_host_says_so(caplog: pytest.LogCaptureFixture) -> None:
    host = Host("127.0.0.1:0", HostConfig(metrics_log_interval_s=0))
    with caplog.at_level(logging.INFO, logger="reference_host"):
        await host.start()
    await host.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("host.loopback_only") == 1
    assert "host.unauthenticated" not in messages


@pytest.mark.asyncio
async def test_host_refuses_a_port_in_use(start_host: StartHost) -> None:
    first = await start_host()
    second = Host(f"127.0.0.1:{first.port}", HostConfig(metrics_log_interval_s=0))
    with pytest.raises(OSError, match="bind"):
        await second.start()


def test_public_api() -> None:
    assert sorted(reference_host.__all__) == [
        "Host",
        "HostConfig",
        "Metrics",
        "TlsConfig",
        "TokenPolicy",
        "__version__",
        "choose_member",
        "load_tokens",
        "rendezvous_score",
    ]
    for name in reference_host.__all__:
        assert hasattr(reference_host, name)


def _cli_env() -> dict[str, str]:
    """Return the environment a host CLI subprocess runs with: ours, plus the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "gen" / "python"), str(REPO)])
    return env


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-015")
async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('[{"token": "t1", "client_id": "cli-worker"}]')
    env = _cli_env()
    env.pop("GRPC_EXPERIMENTS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reference_host", "--address", "127.0.0.1:0",
        "--tokens", str(tokens), "--log-format", "json", "--drain-grace-ms", "500",
        env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        port = 0
        startup: list[bytes] = []
        while not port:
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, "the host exited before starting"
            startup.append(line)
            match = re.search(rb'"event": "host.started".*"port": (\d+)', line)
            if match:
                port = int(match.group(1))
        # The CLI moves gRPC's I/O to the Python thread when the operator did not choose.
        assert any(
            b'"grpc_experiments": "-event_engine_client,-event_engine_listener"' in line
            for line in startup
        ), startup
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await _health(channel, "") == health_pb2.HealthCheckResponse.SERVING
            worker = await RawWorker(
                channel, "cli-worker", extra_metadata=(("authorization", "Bearer t1"),)
            ).open(hello())
            await worker.register("cli")
            process.send_signal(signal.SIGTERM)
            assert await worker.wait_ended(30) == grpc.StatusCode.UNAVAILABLE
        assert await asyncio.wait_for(process.wait(), 30) == 0
        rest = await asyncio.wait_for(process.stderr.read(), 30)
        assert b'"event": "host.stopped"' in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.asyncio
async def test_cli_rejects_inconsistent_flags() -> None:
    env = _cli_env()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reference_host", "--tls-cert", "x.pem",
        env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"--tls-key" in err


@pytest.mark.asyncio
async def test_cli_keeps_the_operators_grpc_experiments() -> None:
    env = _cli_env()
    env["GRPC_EXPERIMENTS"] = ""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reference_host", "--address", "127.0.0.1:0",
        "--log-format", "json",
        env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        startup: list[bytes] = []
        while not any(b'"event": "host.started"' in line for line in startup):
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, "the host exited before starting"
            startup.append(line)
        assert any(b'"grpc_experiments": ""' in line for line in startup), startup
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)


def test_prefer_poll_io_leaves_an_operator_setting() -> None:
    env: dict[str, str] = {}
    assert prefer_poll_io(env) is True
    assert env == {"GRPC_EXPERIMENTS": "-event_engine_client,-event_engine_listener"}
    chosen = {"GRPC_EXPERIMENTS": "event_engine_listener"}
    assert prefer_poll_io(chosen) is False
    assert chosen == {"GRPC_EXPERIMENTS": "event_engine_listener"}


def test_package_import_does_not_load_grpc() -> None:
    # python -m reference_host relies on this to set GRPC_EXPERIMENTS before gRPC loads.
    env = _cli_env()
    probe = "import sys, reference_host, reference_host.__main__; print('grpc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
