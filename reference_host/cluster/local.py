"""A host cluster on this machine: a NATS server (or an existing one) and N node processes.

``python -m reference_host.cluster.local --nodes 3`` starts them, prints one line per node,
``node ID 127.0.0.1:PORT pid=PID``, then ``addresses A,B,C``, and runs until SIGINT/SIGTERM,
when it stops the nodes and the NATS server it started. Used by the demo, the benchmark and
the conformance script; extra arguments after ``--`` go to every node. With ``--control-dir
DIR``, ``python -m reference_host.cluster.fault kill|start ADDRESS --control-dir DIR`` kills a
node or starts it again (see ``_control``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

from reference_host.cluster._control import ControlDir
from reference_host.cluster._proxies import NatsProxies
from reference_host.cluster.nats_server import NatsServer, free_port

_STARTUP_S: Final = 60.0
# How often the launcher looks for control requests (and for its stop signal).
_CONTROL_POLL_S: Final = 0.05
# The line that announces every node's address to a conformance harness (spawn mode).
ADDRESSES_PREFIX: Final = "AGENTWORKER_ADDRESSES="


class NodeProcess:
    """A ``python -m reference_host --cluster`` process on a free loopback port."""

    def __init__(
        self,
        nats_url: str,
        node_id: str,
        *,
        name: str,
        lease_ms: int,
        extra: Sequence[str],
        address: str | None = None,
    ) -> None:
        self.node_id = node_id
        self.address = address or f"127.0.0.1:{free_port()}"
        self.port = int(self.address.rpartition(":")[2])
        self._args = [
            sys.executable, "-m", "reference_host",
            "--address", self.address,
            "--cluster", nats_url,
            "--cluster-name", name,
            "--node-id", node_id,
            "--cluster-lease-ms", str(lease_ms),
            "--log-format", "json",
            *extra,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Return whether the node's process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """Return the process id (0 before the start)."""
        return self.process.pid if self.process is not None else 0

    def restarted(self, node_id: str) -> NodeProcess:
        """Return a node with the same command and address under ``node_id`` (a restarted
        node is a new node, spec 18.1), not yet started."""
        node = NodeProcess.__new__(NodeProcess)
        node.node_id, node.address, node.port = node_id, self.address, self.port
        node._args = list(self._args)
        node._args[node._args.index("--node-id") + 1] = node_id
        node.process = None
        return node

    def start(self, log: IO[bytes] | None) -> None:
        """Start the node; its log goes to ``log`` (or is discarded)."""
        self.process = subprocess.Popen(  # our own interpreter and module
            self._args,
            stdout=subprocess.DEVNULL,
            stderr=log if log is not None else subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_serving(self, deadline: float) -> None:
        """Wait until the node accepts connections (it joined the cluster before binding)."""
        import socket

        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"node {self.node_id} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {self.node_id} did not listen") from None
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        """Stop the node with ``sig`` (SIGKILL after ``timeout_s``)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)


class LocalCluster:
    """NATS (started unless ``nats_url`` is given) and ``nodes`` host node processes."""

    def __init__(
        self,
        nodes: int,
        *,
        nats_url: str | None = None,
        name: str = "agentworker",
        lease_ms: int = 3_000,
        extra: Sequence[str] = (),
        log_dir: str | None = None,
        first_address: str | None = None,
        proxied: bool = False,
    ) -> None:
        self.nats: NatsServer | None = None if nats_url is not None else NatsServer()
        self.nats_url = nats_url or (self.nats.url if self.nats is not None else "")
        # With ``proxied``, each node reaches NATS through a proxy of its own, which
        # ``silence`` and ``restore`` act on.
        self._proxies = NatsProxies() if proxied else None
        self._proxy_of: dict[str, str] = {}
        self.nodes = []
        for i in range(nodes):
            address = first_address if i == 0 else None
            url = self.nats_url
            if self._proxies is not None:
                url = self._proxies.add(self.nats_url)
            node = NodeProcess(
                url, f"n{i + 1}", name=name, lease_ms=lease_ms, extra=extra, address=address
            )
            self._proxy_of[node.address] = url
            self.nodes.append(node)
        self._log_dir = log_dir
        self._logs: list[IO[bytes]] = []
        self._restarts = 0

    @property
    def addresses(self) -> list[str]:
        """Return the nodes' gRPC addresses, in node order."""
        return [node.address for node in self.nodes]

    def start(self) -> None:
        """Start NATS and the nodes; return once every node serves. The first node starts
        last, so that once it serves, every node does."""
        if self.nats is not None:
            self.nats.start()
        deadline = time.monotonic() + _STARTUP_S
        for node in self.nodes[1:]:
            node.start(self._log_for(node))
        for node in self.nodes[1:]:
            node.wait_serving(deadline)
        self.nodes[0].start(self._log_for(self.nodes[0]))
        self.nodes[0].wait_serving(deadline)

    def restart(self, address: str) -> None:
        """Start the stopped node at ``address`` again, as a new node with the same command;
        return once it serves."""
        index = next(i for i, n in enumerate(self.nodes) if n.address == address)
        old = self.nodes[index]
        self._restarts += 1
        base = old.node_id.split("-r", 1)[0]
        node = old.restarted(f"{base}-r{self._restarts}")
        self.nodes[index] = node
        node.start(self._log_for(node))
        try:
            node.wait_serving(time.monotonic() + _STARTUP_S)
        except (RuntimeError, TimeoutError):
            node.stop(signal.SIGKILL)
            raise

    def silence(self, address: str) -> None:
        """Silence the connection of the node at ``address`` to NATS (it stays open)."""
        if self._proxies is None:
            raise RuntimeError("the cluster runs without proxies to NATS")
        self._proxies.freeze(self._proxy_of[address])

    def restore(self, address: str) -> None:
        """Let the node at ``address`` reach NATS again."""
        if self._proxies is None:
            raise RuntimeError("the cluster runs without proxies to NATS")
        self._proxies.thaw(self._proxy_of[address])

    def _log_for(self, node: NodeProcess) -> IO[bytes] | None:
        if self._log_dir is None:
            return None
        log = open(os.path.join(self._log_dir, f"{node.node_id}.log"), "ab")  # noqa: SIM115
        self._logs.append(log)
        return log

    def stop(self) -> None:
        """Stop the nodes, then the NATS server if it was started here."""
        for node in self.nodes:
            node.stop()
        if self._proxies is not None:
            self._proxies.close()
        if self.nats is not None:
            self.nats.close()
        for log in self._logs:
            log.close()

    def describe(self) -> str:
        """Return the lines printed at start: one per node, then the address list."""
        lines = [f"nats {self.nats_url}"]
        for node in self.nodes:
            lines.append(f"node {node.node_id} {node.address} pid={node.pid}")
        lines.append(f"addresses {','.join(self.addresses)}")
        return "\n".join(lines)

    def to_json(self) -> str:
        """Return the cluster as one JSON object (for scripts)."""
        return json.dumps(
            {
                "nats": self.nats_url,
                "nodes": [
                    {
                        "id": node.node_id,
                        "address": node.address,
                        "pid": node.pid,
                    }
                    for node in self.nodes
                ],
            }
        )


def open_control(cluster: LocalCluster, control_dir: Path | None) -> ControlDir | None:
    """Return the control directory of ``cluster`` (started), its ``nodes.json`` written, or
    None without one."""
    if control_dir is None:
        return None
    control = ControlDir(
        control_dir, lambda: list(cluster.nodes), cluster.restart, cluster.silence, cluster.restore
    )
    control.publish_nodes()
    return control


def serve(control: ControlDir | None, stopped: list[bool]) -> None:
    """Run until ``stopped[0]`` is set (by a signal handler), carrying out the requests of
    ``control`` if given."""
    if control is None:
        while not stopped[0]:
            signal.pause()
        return
    while not stopped[0]:
        if not control.handle_pending():
            time.sleep(_CONTROL_POLL_S)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a local cluster until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m reference_host.cluster.local",
        description="Run NATS and N reference-host nodes on 127.0.0.1 as one cluster.",
    )
    parser.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument("--nats", help="use this NATS server instead of starting one")
    parser.add_argument("--name", default="agentworker", help="cluster name")
    parser.add_argument("--lease-ms", type=int, default=3_000, help="node lease (default 3000)")
    parser.add_argument("--log-dir", help="write each node's log to DIR/ID.log")
    parser.add_argument("--json", action="store_true", help="print the cluster as JSON")
    parser.add_argument(
        "--first-address",
        metavar="HOST:PORT",
        help="the first node's address (e.g. a conformance harness's {address}); the nodes' "
        f"addresses are then printed first, as {ADDRESSES_PREFIX}A,B,C, before any node starts",
    )
    parser.add_argument(
        "--control-dir",
        type=Path,
        metavar="DIR",
        help="take kill/start/cut/restore requests for the nodes from DIR "
        "(python -m reference_host.cluster.fault); each node then reaches NATS through a "
        "proxy of its own, which cut and restore silence and open",
    )
    parser.add_argument("extra", nargs="*", help="arguments for every node (after --)")
    args = parser.parse_args(argv)
    cluster = LocalCluster(
        args.nodes,
        nats_url=args.nats,
        name=args.name,
        lease_ms=args.lease_ms,
        extra=args.extra,
        log_dir=args.log_dir,
        first_address=args.first_address,
        proxied=args.control_dir is not None,
    )
    if args.first_address:
        print(f"{ADDRESSES_PREFIX}{','.join(cluster.addresses)}", flush=True)
    stopped = [False]

    def on_signal(signum: int, frame: object) -> None:
        stopped[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        # Inside the try: a node that fails to start must not leave NATS and the others behind.
        cluster.start()
        # nodes.json first: once the addresses are printed, the fault command works.
        control = open_control(cluster, args.control_dir)
        print(cluster.to_json() if args.json else cluster.describe(), flush=True)
        serve(control, stopped)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
