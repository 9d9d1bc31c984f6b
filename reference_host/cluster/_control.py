"""The local cluster's control directory: how an outside command asks the launcher to kill a
node or start it again (``python -m reference_host.cluster.fault``).

Actions: ``kill`` (SIGKILL) and ``start`` (a new node on the same address, once it serves);
``cut`` and ``restore`` silence the node's connection to NATS (kept open, nothing passes) and
let it through again.

A request is a file ``req-ID.json`` (``{"action": ..., "address": ...}``) that the client
renames into the directory whole; the launcher, which owns the node processes, carries it out
and answers with ``rep-ID.json`` (``{"ok": ..., "message": ...}``). The launcher also keeps
``nodes.json`` (each node's address, id and pid) up to date. Files, not a socket: the
directory may be anywhere, and a socket path is limited to about 100 bytes.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Protocol

__all__ = [
    "ACTIONS",
    "NODES_FILE",
    "ControlDir",
    "read_reply",
    "reply_path",
    "request_path",
    "write_json",
]

ACTIONS: Final = ("kill", "start", "cut", "restore")
NODES_FILE: Final = "nodes.json"
_REQUEST, _REPLY = "req-", "rep-"


def write_json(path: Path, value: object) -> None:
    """Write ``value`` to ``path`` whole: into a temporary file first, then renamed."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def request_path(directory: Path, request_id: str) -> Path:
    """Return the path of request ``request_id``."""
    return directory / f"{_REQUEST}{request_id}.json"


def reply_path(directory: Path, request_id: str) -> Path:
    """Return the path of the reply to request ``request_id``."""
    return directory / f"{_REPLY}{request_id}.json"


def read_reply(path: Path) -> tuple[bool, str]:
    """Return the reply's (ok, message)."""
    value = json.loads(path.read_text())
    return bool(value.get("ok")), str(value.get("message", ""))


class Node(Protocol):
    """What the control directory needs of a node (``local.NodeProcess``)."""

    node_id: str
    address: str

    @property
    def running(self) -> bool: ...

    @property
    def pid(self) -> int: ...

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None: ...


class ControlDir:
    """The launcher's side: carries out the requests found in ``directory`` on ``nodes``.
    ``restart`` starts a node again on the same address (as a new node) and returns once it
    serves; ``silence`` and ``restore`` cut a node's connection to the shared state and let it
    through again. Each raises with a message when it cannot."""

    def __init__(
        self,
        directory: Path,
        nodes: Callable[[], Sequence[Node]],
        restart: Callable[[str], None],
        silence: Callable[[str], None],
        restore: Callable[[str], None],
    ) -> None:
        self.directory = directory
        self._nodes = nodes
        self._restart = restart
        self._silence = silence
        self._restore = restore
        directory.mkdir(parents=True, exist_ok=True)

    def publish_nodes(self) -> None:
        """Write ``nodes.json``: every node's address, id, pid and whether it runs."""
        write_json(
            self.directory / NODES_FILE,
            [
                {"address": n.address, "id": n.node_id, "pid": n.pid, "running": n.running}
                for n in self._nodes()
            ],
        )

    def handle_pending(self) -> int:
        """Carry out every request now in the directory; return how many there were."""
        handled = 0
        for path in sorted(self.directory.glob(f"{_REQUEST}*.json")):
            request_id = path.name.removeprefix(_REQUEST).removesuffix(".json")
            try:
                request = json.loads(path.read_text())
                ok, message = self._handle(str(request["action"]), str(request["address"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                ok, message = False, f"unreadable request: {exc}"
            path.unlink(missing_ok=True)
            write_json(reply_path(self.directory, request_id), {"ok": ok, "message": message})
            handled += 1
        if handled:
            self.publish_nodes()
        return handled

    def _handle(self, action: str, address: str) -> tuple[bool, str]:
        nodes = {n.address: n for n in self._nodes()}
        node = nodes.get(address)
        if action not in ACTIONS:
            return False, f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}"
        if node is None:
            return False, f"no node at {address}; the nodes are at {', '.join(nodes) or 'none'}"
        if action == "kill":
            if not node.running:
                return False, f"node {node.node_id} at {address} is not running"
            node.stop(signal.SIGKILL)
            return True, f"killed node {node.node_id} at {address}"
        if action in ("cut", "restore"):
            try:
                (self._silence if action == "cut" else self._restore)(address)
            except (OSError, RuntimeError, TimeoutError, KeyError) as exc:
                return False, f"cannot {action} node {node.node_id} at {address}: {exc!r}"
            done = "cut off from" if action == "cut" else "connected again to"
            return True, f"node {node.node_id} at {address} is {done} the shared state"
        if node.running:
            return False, f"node {node.node_id} at {address} is already running"
        try:
            self._restart(address)
        except (OSError, RuntimeError, TimeoutError) as exc:
            return False, f"node at {address} did not start: {exc}"
        node = {n.address: n for n in self._nodes()}[address]
        return True, f"node {node.node_id} serves at {address}"
