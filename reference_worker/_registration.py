"""Registration with the host: agent types and subscriptions, at connect and afterwards."""

from __future__ import annotations

from reference_worker._connection import Connection
from reference_worker._subscriptions import Subscription

__all__ = ["announce"]


async def announce(
    conn: Connection, agent_types: list[str], subscriptions: list[Subscription]
) -> None:
    """Registers types, then adds subscriptions with their ids (AWP-CONN-007, AWP-CONN-020).

    Raises HostConnectionError when the host refuses one.
    """
    for agent_type in agent_types:
        await conn.register_agent(agent_type)
    for subscription in subscriptions:
        await conn.add_subscription(subscription.to_proto())
