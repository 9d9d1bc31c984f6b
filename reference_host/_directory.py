"""Where registrations, subscriptions and client-id claims are decided.

The servicer changes routing state only through a ``Directory``. A single-process host uses
``LocalDirectory``, which writes this host's tables directly; a cluster node
(``reference_host.cluster``) decides the change in state shared by every node and returns once
every live node routes by it (AWP-CLU-006). Routing itself reads the same local tables either way.
"""

from __future__ import annotations

from typing import Protocol

from agentworker.v1 import agentworker_pb2 as pb

from ._connection import ControlConnection, DataConnection
from ._registry import Registry
from ._subscriptions import SubscriptionTable


class Directory(Protocol):
    """Changes to routing state made on behalf of workers."""

    async def claim(self, conn: DataConnection) -> None:
        """Reserve ``conn.client_id`` for ``conn``; raise AlreadyExists if another holds it."""

    def release(self, conn: DataConnection) -> None:
        """Give up what ``conn`` claimed and owned, after the router detached it."""

    async def register(self, conn: DataConnection, agent_type: str) -> bool:
        """Register ``agent_type`` for ``conn``; return False if it already was."""

    async def add_subscription(self, client_id: str, subscription: pb.Subscription) -> bool:
        """Add ``subscription`` owned by ``client_id``; return False if it already was there."""

    async def remove_subscription(self, client_id: str, subscription_id: str) -> None:
        """Remove the subscription ``subscription_id`` that ``client_id`` owns."""

    async def claim_control(self, conn: ControlConnection) -> None:
        """Reserve the control channel of ``conn.client_id``; raise AlreadyExists if another
        is open for it anywhere (AWP-CTL-007)."""

    def release_control(self, conn: ControlConnection) -> None:
        """Give up what ``claim_control`` reserved for ``conn``."""


class LocalDirectory:
    """The directory of a single-process host: this host's tables are the whole truth."""

    __slots__ = ("_registry", "_subscriptions")

    def __init__(self, registry: Registry, subscriptions: SubscriptionTable) -> None:
        self._registry = registry
        self._subscriptions = subscriptions

    async def claim(self, conn: DataConnection) -> None:
        """Nothing to reserve: the router refuses a second local channel itself."""

    def release(self, conn: DataConnection) -> None:
        """Nothing to give up: detaching removed everything."""

    async def register(self, conn: DataConnection, agent_type: str) -> bool:
        """Register in the local registry."""
        return self._registry.register(conn, agent_type)

    async def add_subscription(self, client_id: str, subscription: pb.Subscription) -> bool:
        """Add to the local subscription table."""
        return self._subscriptions.add(client_id, subscription)

    async def remove_subscription(self, client_id: str, subscription_id: str) -> None:
        """Remove from the local subscription table."""
        self._subscriptions.remove(client_id, subscription_id)

    async def claim_control(self, conn: ControlConnection) -> None:
        """Nothing to reserve: the control router refuses a second local channel itself."""

    def release_control(self, conn: ControlConnection) -> None:
        """Nothing to give up."""
