"""Agent types and the workers (data connections) that serve them.

A type normally has one member. With CAPABILITY_SHARED_AGENT_TYPES negotiated by every member,
several workers may serve it; an agent key then maps to one member by rendezvous hashing.
"""

from __future__ import annotations

import re
from typing import Final

from ._connection import DataConnection
from ._errors import AlreadyExists, InvalidArgument
from ._sharding import choose_member

_AGENT_TYPE_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,255}")


def validate_agent_type(agent_type: str) -> None:
    """Raise InvalidArgument unless ``agent_type`` is 1-255 characters of [A-Za-z0-9_.-]."""
    if not agent_type:
        raise InvalidArgument("agent type must not be empty")
    if _AGENT_TYPE_RE.fullmatch(agent_type) is None:
        raise InvalidArgument(
            f"agent type {agent_type[:64]!r} must be at most 255 characters of [A-Za-z0-9_.-]"
        )


class Registry:
    """Maps agent types to the data connections serving them."""

    __slots__ = ("_allow_sharing", "_members", "_sole")

    def __init__(self, *, allow_sharing: bool) -> None:
        self._allow_sharing = allow_sharing
        # agent type -> {client_id: connection}, in registration order.
        self._members: dict[str, dict[str, DataConnection]] = {}
        # agent type -> its member, for the types that have exactly one (nearly all): routing
        # looks a target up once per request and per event delivery.
        self._sole: dict[str, DataConnection] = {}

    def register(self, conn: DataConnection, agent_type: str) -> bool:
        """Add ``conn`` as a member of ``agent_type``; return False if it already was one.

        Raises AlreadyExists when another worker holds the type and sharing is not allowed for
        every party.
        """
        members = self._members.get(agent_type)
        if members is None:
            self._members[agent_type] = {conn.client_id: conn}
            self._sole[agent_type] = conn
            conn.agent_types.add(agent_type)
            return True
        current = members.get(conn.client_id)
        if current is conn:
            return False
        if current is not None:
            # A stale connection of the same client; the new one replaces it.
            del members[conn.client_id]
            self._update_sole(agent_type)
        shareable = self._allow_sharing and conn.shares_types
        if members and not (shareable and all(m.shares_types for m in members.values())):
            holder = next(iter(members))
            raise AlreadyExists(f"agent type {agent_type!r} is already registered by {holder!r}")
        members[conn.client_id] = conn
        self._update_sole(agent_type)
        conn.agent_types.add(agent_type)
        return True

    def lookup(self, agent_type: str, key: str) -> DataConnection | None:
        """Return the connection serving agent ``(agent_type, key)``, or None."""
        sole = self._sole.get(agent_type)
        if sole is not None:
            return sole
        members = self._members.get(agent_type)
        if not members:
            return None
        chosen = choose_member(members, agent_type, key)
        return members[chosen] if chosen is not None else None

    def set_members(self, agent_type: str, conns: list[DataConnection]) -> None:
        """Make ``conns`` the members of ``agent_type``, as decided elsewhere (a cluster)."""
        old = self._members.pop(agent_type, {})
        for conn in old.values():
            conn.agent_types.discard(agent_type)
        if conns:
            self._members[agent_type] = {conn.client_id: conn for conn in conns}
            for conn in conns:
                conn.agent_types.add(agent_type)
        self._update_sole(agent_type)

    def members(self, agent_type: str) -> list[DataConnection]:
        """Return the connections serving ``agent_type``, in registration order."""
        return list(self._members.get(agent_type, {}).values())

    def remove_connection(self, conn: DataConnection) -> None:
        """Remove every registration of ``conn``."""
        for agent_type in conn.agent_types:
            members = self._members.get(agent_type)
            if members is not None and members.get(conn.client_id) is conn:
                del members[conn.client_id]
                if not members:
                    del self._members[agent_type]
                self._update_sole(agent_type)
        conn.agent_types.clear()

    def _update_sole(self, agent_type: str) -> None:
        members = self._members.get(agent_type)
        if members is not None and len(members) == 1:
            self._sole[agent_type] = next(iter(members.values()))
        else:
            self._sole.pop(agent_type, None)
