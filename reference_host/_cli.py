"""The host CLI: arguments, configuration and the run loop; ``__main__`` is its entry point."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
from collections.abc import Sequence

from ._config import DEFAULT_ADDRESS, ClusterConfig, HostConfig, TlsConfig, load_tokens
from ._io_defaults import EXPERIMENTS_VARIABLE
from ._logging import configure_logging, log
from ._server import Host, split_address
from ._version import __version__

_logger = logging.getLogger("reference_host")


def _address(value: str) -> str:
    try:
        split_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not greater than 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the host CLI."""
    parser = argparse.ArgumentParser(
        prog="python -m reference_host",
        description="Run the agentworker reference host.",
        epilog="gRPC I/O runs on the Python thread (GRPC_EXPERIMENTS="
        "-event_engine_client,-event_engine_listener), which costs less CPU per message; "
        "set GRPC_EXPERIMENTS yourself, even to an empty value, to choose otherwise.",
    )
    parser.add_argument(
        "--address",
        type=_address,
        default=DEFAULT_ADDRESS,
        help=f"HOST:PORT to serve on (default {DEFAULT_ADDRESS})",
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain; serves TLS with --tls-key")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--client-ca", help="PEM CA bundle; requires and verifies client certificates (mTLS)"
    )
    parser.add_argument(
        "--tokens",
        metavar="FILE",
        help='JSON list of {"token", "client_id", "agent_types"?}; every call '
        "must then carry 'authorization: Bearer <token>'",
    )
    parser.add_argument(
        "--default-rpc-timeout-ms",
        type=_positive_int,
        default=60_000,
        help="deadline of RPCs that carry none (default 60000)",
    )
    parser.add_argument(
        "--queue-limit",
        type=_positive_int,
        default=10_000,
        help="outbound frames queued per connection (default 10000)",
    )
    parser.add_argument(
        "--max-calls-in-flight",
        type=_positive_int,
        default=10_000,
        help="RPCs a connection may have in flight before further ones get OVERLOADED "
        "(default 10000)",
    )
    parser.add_argument(
        "--slow-consumer-timeout-ms",
        type=_positive_int,
        default=10_000,
        help="wait for room in a full queue before disconnecting the consumer (default 10000)",
    )
    parser.add_argument(
        "--drain-grace-ms",
        type=int,
        default=10_000,
        help="time in-flight RPCs get on SIGTERM/SIGINT (default 10000)",
    )
    parser.add_argument(
        "--metrics-address",
        type=_address,
        help="HOST:PORT of an HTTP endpoint serving Prometheus metrics",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log line format (default text)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level (default INFO)",
    )
    cluster = parser.add_argument_group(
        "cluster", "run as one node of a host cluster over NATS (needs the [cluster] extra)"
    )
    cluster.add_argument(
        "--cluster",
        metavar="URL[,URL...]",
        help="NATS server URL(s), e.g. nats://127.0.0.1:4222; joins the cluster they hold",
    )
    cluster.add_argument("--node-id", default="", help="this node's name (default: random)")
    cluster.add_argument(
        "--cluster-name",
        default="agentworker",
        help="name shared by the nodes of one cluster (default agentworker)",
    )
    cluster.add_argument(
        "--cluster-lease-ms",
        type=_positive_int,
        default=3_000,
        help="a node that renews no lease for this long is lost (default 3000)",
    )
    cluster.add_argument("--nats-ca", help="PEM CA bundle verifying the NATS server (TLS)")
    cluster.add_argument("--nats-cert", help="PEM client certificate towards NATS")
    cluster.add_argument("--nats-key", help="PEM private key of --nats-cert")
    cluster.add_argument("--nats-creds", help="NATS credentials file (JWT and NKey seed)")
    parser.add_argument("--version", action="version", version=f"reference_host {__version__}")
    return parser


def build_config(args: argparse.Namespace) -> HostConfig:
    """Turn parsed arguments into a HostConfig; raise ValueError for inconsistent flags."""
    tls: TlsConfig | None = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise ValueError("--tls-cert and --tls-key must be given together")
        tls = TlsConfig.from_files(args.tls_cert, args.tls_key, args.client_ca)
    elif args.client_ca:
        raise ValueError("--client-ca needs --tls-cert and --tls-key")
    cluster: ClusterConfig | None = None
    if args.cluster and args.nats_creds and not _has_nkeys():
        # nats-py signs with a credentials file only through the nkeys package.
        raise ValueError(
            "--nats-creds needs the nkeys package (pip install nkeys); a user and password or "
            "a token can go in the --cluster URL instead (nats://USER:PASSWORD@HOST:PORT)"
        )
    if args.cluster:
        cluster = ClusterConfig(
            servers=tuple(url.strip() for url in args.cluster.split(",") if url.strip()),
            node_id=args.node_id,
            name=args.cluster_name,
            lease_ms=args.cluster_lease_ms,
            tls_ca=args.nats_ca,
            tls_cert=args.nats_cert,
            tls_key=args.nats_key,
            credentials=args.nats_creds,
        )
    elif args.node_id or args.nats_ca or args.nats_cert or args.nats_creds:
        raise ValueError("--node-id and the --nats-* options need --cluster")
    return HostConfig(
        default_rpc_timeout_ms=args.default_rpc_timeout_ms,
        queue_limit=args.queue_limit,
        max_calls_in_flight=args.max_calls_in_flight,
        slow_consumer_timeout_ms=args.slow_consumer_timeout_ms,
        tls=tls,
        tokens=load_tokens(args.tokens) if args.tokens else (),
        metrics_address=args.metrics_address,
        drain_grace_s=max(0, args.drain_grace_ms) / 1000.0,
        cluster=cluster,
    )


def _has_nkeys() -> bool:
    return importlib.util.find_spec("nkeys") is not None


async def _run(address: str, config: HostConfig) -> None:
    log(
        _logger,
        logging.INFO,
        "host.grpc",
        grpc_experiments=os.environ.get(EXPERIMENTS_VARIABLE, "(gRPC defaults)"),
    )
    host = Host(address=address, config=config)
    await host.start()
    await host.stop_when_signal()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the host until SIGTERM or SIGINT; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format, getattr(logging, args.log_level))
    try:
        config = build_config(args)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    try:
        asyncio.run(_run(args.address, config))
    except OSError as exc:
        log(_logger, logging.ERROR, "host.failed", error=str(exc))
        return 1
    return 0
