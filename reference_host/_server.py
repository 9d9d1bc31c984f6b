"""The Host: a grpc.aio server with the agent service, health, reflection and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from types import TracebackType
from typing import TYPE_CHECKING, Final

import grpc
from grpc_reflection.v1alpha import reflection

from . import _health
from ._config import DEFAULT_ADDRESS, HostConfig
from ._control import ControlRouter
from ._directory import Directory, LocalDirectory
from ._logging import log
from ._metrics import Metrics
from ._metrics_export import HostCollector, MetricsServer, QueueGauges
from ._registry import Registry
from ._router import Router
from ._security import Authenticator, server_credentials
from ._servicer import SERVICE_NAME, AgentRpcServicer
from ._subscriptions import SubscriptionTable
from ._version import __version__

if TYPE_CHECKING:
    from .cluster import ClusterNode

_logger = logging.getLogger("reference_host")

# Time the server gives handlers to end their streams once every channel was told to close.
_FINAL_GRACE_S: Final = 2.0
_MIN_FINAL_GRACE_S: Final = 0.25


def split_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 hosts in brackets) into host and port."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r} must be HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Return True when ``host`` names only the local machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Host:
    """An agentworker host serving workers over gRPC.

    ``address`` is ``HOST:PORT``; port 0 binds an ephemeral port, available as ``port`` after
    ``start()``.
    """

    def __init__(self, address: str = DEFAULT_ADDRESS, config: HostConfig | None = None) -> None:
        split_address(address)
        self._address = address
        self._config = config if config is not None else HostConfig()
        self._metrics = Metrics()
        self._server: grpc.aio.Server | None = None
        self._port = 0
        self._health: _health.HealthService | None = None
        self._router: Router | None = None
        self._control: ControlRouter | None = None
        self._metrics_server: MetricsServer | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._cluster: ClusterNode | None = None

    @property
    def address(self) -> str:
        """Return the address the host was asked to bind."""
        return self._address

    @property
    def config(self) -> HostConfig:
        """Return the host's configuration."""
        return self._config

    @property
    def port(self) -> int:
        """Return the bound port (0 before start)."""
        return self._port

    @property
    def cluster(self) -> ClusterNode | None:
        """Return the cluster node this host runs as, or None for a single-process host."""
        return self._cluster

    @property
    def metrics(self) -> Metrics:
        """Return the host's counters."""
        return self._metrics

    @property
    def metrics_port(self) -> int | None:
        """Return the bound metrics HTTP port, or None without a metrics endpoint."""
        return self._metrics_server.port if self._metrics_server is not None else None

    def queue_gauges(self) -> QueueGauges:
        """Return the live queue figures (safe to call from another thread)."""
        router, control = self._router, self._control
        if router is None or control is None:
            return QueueGauges(0, 0, 0, 0)
        # list() copies in one step, so a concurrent change of the table cannot break it.
        channels = [*list(router.connections.values()), *list(control.connections.values())]
        queued = owed = largest = 0
        for channel in channels:
            depth = len(channel.outbound)
            queued += depth
            owed += channel.outbound.owed
            largest = max(largest, depth)
        return QueueGauges(queued, owed, largest, router.pending_rpcs)

    async def start(self) -> None:
        """Bind the address and start serving."""
        if self._server is not None:
            raise RuntimeError("the host is already started")
        config = self._config
        registry = Registry(allow_sharing=config.shared_agent_types)
        subscriptions = SubscriptionTable()
        router = Router(config, self._metrics, registry, subscriptions)
        control = ControlRouter(config, self._metrics, registry, router)
        health = _health.HealthService()
        directory: Directory = LocalDirectory(registry, subscriptions)
        if config.cluster is not None:
            # Imported only here: a single-process host loads nothing of NATS.
            from .cluster import ClusterNode

            node = ClusterNode(
                config.cluster,
                config,
                self._metrics,
                registry,
                subscriptions,
                router,
                control,
                health,
            )
            await node.start()
            self._cluster = node
            directory = node
        servicer = AgentRpcServicer(
            config=config,
            metrics=self._metrics,
            authenticator=Authenticator(config.tokens),
            registry=registry,
            subscriptions=subscriptions,
            router=router,
            control=control,
            directory=directory,
        )
        health.set("", _health.SERVING)
        health.set(SERVICE_NAME, _health.SERVING)
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        server.add_generic_rpc_handlers([*servicer.generic_handlers(), health.handler()])
        reflection.enable_server_reflection(
            [SERVICE_NAME, _health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        try:
            if config.tls is not None:
                port = server.add_secure_port(self._address, server_credentials(config.tls))
            else:
                port = server.add_insecure_port(self._address)
        except RuntimeError as exc:
            raise OSError(f"cannot bind {self._address}: {exc}") from exc
        if port == 0:
            raise OSError(f"cannot bind {self._address}")
        await server.start()
        self._server, self._port = server, port
        self._router, self._control, self._health = router, control, health
        if config.metrics_address is not None:
            metrics_host, metrics_port = split_address(config.metrics_address)
            collector = HostCollector(self._metrics, self.queue_gauges)
            self._metrics_server = MetricsServer(collector, metrics_host, metrics_port)
            await self._metrics_server.start()
        if config.metrics_log_interval_s > 0:
            self._metrics_task = asyncio.create_task(self._log_metrics_periodically())
        host = split_address(self._address)[0]
        log(
            _logger,
            logging.INFO,
            "host.started",
            version=__version__,
            address=self._address,
            port=port,
            tls=config.tls is not None,
            mutual_tls=config.tls is not None and config.tls.client_ca is not None,
            tokens=len(config.tokens),
            metrics_port=self.metrics_port,
        )
        authenticated = bool(config.tokens) or (
            config.tls is not None and config.tls.client_ca is not None
        )
        if not authenticated and is_loopback(host):
            log(
                _logger,
                logging.INFO,
                "host.loopback_only",
                address=self._address,
                message="workers are not authenticated (no --tokens or --client-ca); "
                "serving this machine's processes only",
            )
        elif not authenticated:
            log(
                _logger,
                logging.WARNING,
                "host.unauthenticated",
                address=self._address,
                tls=config.tls is not None,
                message="workers are not authenticated: any client reaching this address can "
                "register agents and read events; configure --tokens or --client-ca",
            )

    async def stop(self, grace: float | None = None) -> None:
        """Drain and stop: refuse new work, let in-flight RPCs finish within ``grace`` seconds,
        answer the rest with SHUTTING_DOWN, then close every channel and the server."""
        if self._server is None:
            return
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float | None) -> None:
        server, router, control, health = self._server, self._router, self._control, self._health
        assert server is not None
        assert router is not None
        assert control is not None
        assert health is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (grace or 0.0)
        log(_logger, logging.INFO, "host.draining", grace_s=grace, pending_rpcs=router.pending_rpcs)
        health.set("", _health.NOT_SERVING)
        health.set(SERVICE_NAME, _health.NOT_SERVING)
        router.begin_drain()
        control.begin_drain()
        await router.wait_idle(deadline - loop.time())
        failed = router.fail_pending()
        control.fail_pending()
        if self._cluster is not None:
            # In-flight calls from other nodes had the grace period and their answers are
            # queued; now the other nodes stop routing here.
            await self._cluster.leave()
        router.close_all()
        control.close_all()
        health.close()
        if self._cluster is not None:
            await self._cluster.stop()
        # Channels now flush what they hold (SHUTTING_DOWN answers included) and end; give
        # them a moment even when stopping without grace.
        await server.stop(max(_MIN_FINAL_GRACE_S, min(_FINAL_GRACE_S, deadline - loop.time())))
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._metrics_task
        if self._metrics_server is not None:
            await self._metrics_server.stop()
        log(
            _logger,
            logging.INFO,
            "host.stopped",
            rpcs_failed_at_shutdown=failed,
            **self._metrics.snapshot(),
        )

    async def wait_for_termination(
        self,
        timeout: float | None = None,  # noqa: ASYNC109  # same signature as grpc.aio.Server
    ) -> bool:
        """Wait until the server stops; return False if ``timeout`` seconds passed first."""
        if self._server is None:
            return True
        return await self._server.wait_for_termination(timeout)

    async def stop_when_signal(self, grace: float | None = None) -> None:
        """Wait for SIGTERM or SIGINT, then drain and stop (``grace`` defaults to the config's
        drain_grace_s)."""
        loop = asyncio.get_running_loop()
        received = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, received.set)
        try:
            await received.wait()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        log(_logger, logging.INFO, "host.signal")
        await self.stop(self._config.drain_grace_s if grace is None else grace)

    async def _log_metrics_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._config.metrics_log_interval_s)
            log(_logger, logging.INFO, "host.metrics", **self._metrics.snapshot())

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(grace=1.0)
