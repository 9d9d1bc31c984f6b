"""Acting on one node of a host cluster (spec 18.3): the command given with
``--node-fault-command`` and the cluster's lease ``L`` given with ``--node-lease-ms``.

The command is one shell-quoted string, split by shell rules and run without a shell, with
``{action}`` and ``{address}`` substituted. Actions: ``kill`` (the node at ``address`` is lost
abruptly, as by kill -9: it stops renewing its lease and its connections drop), ``start``
(a node serves on ``address`` again; the command returns once it accepts connections), ``cut``
(the node's connection to the cluster's shared state falls silent: it stays open and nothing
passes, as in a partition) and ``restore`` (it passes again). The
command exits 0 when done; anything else, or no exit within the deadline, is an error of the
harness's setup, reported with the command, its exit status and the end of its output."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "LEASE_OPTION",
    "NODE_FAULT_CASES",
    "NODE_FAULT_OPTION",
    "NodeFault",
    "NodeFaultError",
    "node_fault",
]

NODE_FAULT_OPTION: Final = "--node-fault-command"
LEASE_OPTION: Final = "--node-lease-ms"
# A start may have to wait for the node to join its cluster: give the command a minute.
_COMMAND_DEADLINE_S: Final = 60.0
_TAIL_CHARS: Final = 600
# The cases that act on a node (their replay lines repeat the two options).
NODE_FAULT_CASES: Final = frozenset({"host/cluster/node-loss", "host/cluster/cut-off"})


class NodeFaultError(Exception):
    """The node-fault command failed or did not finish: not the subject's fault."""


@dataclass(frozen=True, slots=True)
class NodeFault:
    """The node-fault command (split, placeholders kept) and the lease ``L`` in ms."""

    argv: tuple[str, ...]
    lease_ms: int

    @property
    def lease_s(self) -> float:
        """Return ``L`` in seconds."""
        return self.lease_ms / 1000

    def command(self, action: str, address: str) -> list[str]:
        """Return the command for ``action`` on the node at ``address``."""
        return [arg.replace("{action}", action).replace("{address}", address) for arg in self.argv]

    async def run(self, action: str, address: str, *, scale: float = 1.0) -> str:
        """Run the command for ``action`` on ``address``; return its output. Raise
        NodeFaultError when it exits non-zero or does not exit within the deadline."""
        argv = self.command(action, address)
        shown = shlex.join(argv)
        limit = _COMMAND_DEADLINE_S * scale
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
        except OSError as exc:
            raise NodeFaultError(f"{NODE_FAULT_OPTION} {shown!r} did not start: {exc}") from exc
        try:
            output, _ = await asyncio.wait_for(process.communicate(), limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise NodeFaultError(
                f"{NODE_FAULT_OPTION} {shown!r} did not finish within {limit:.0f} s"
            ) from None
        text = output.decode(errors="replace").strip()
        if process.returncode != 0:
            raise NodeFaultError(
                f"{NODE_FAULT_OPTION} {shown!r} exited with {process.returncode}: "
                f"{text[-_TAIL_CHARS:] or '(no output)'}"
            )
        return text


def node_fault(command: str | None, lease_ms: int | None) -> NodeFault | None:
    """Split ``command`` and pair it with the lease; None when no command is given. Raise
    ValueError for an empty command, a missing or non-positive lease, or a lease alone."""
    if command is None:
        if lease_ms is not None:
            raise ValueError(f"{LEASE_OPTION} is given without {NODE_FAULT_OPTION}")
        return None
    argv: Sequence[str] = shlex.split(command)
    if not argv:
        raise ValueError(f"{NODE_FAULT_OPTION} is empty")
    if lease_ms is None:
        raise ValueError(
            f"{NODE_FAULT_OPTION} needs {LEASE_OPTION} L: the cluster's lease period (spec 18.1)"
        )
    if lease_ms <= 0:
        raise ValueError(f"{LEASE_OPTION} must be positive, got {lease_ms}")
    return NodeFault(tuple(argv), lease_ms)
