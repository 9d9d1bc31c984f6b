"""Subscriptions: validation, ownership, and matching of topic types to agent types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agentworker.v1 import agentworker_pb2 as pb

from ._errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied

# Bound of the topic-type -> agent-types cache; cleared wholesale when exceeded.
_CACHE_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    owner: str
    subscription: pb.Subscription
    exact: str | None
    prefix: str | None
    agent_type: str


def validate_subscription(subscription: pb.Subscription) -> None:
    """Raise InvalidArgument unless ``subscription`` is well formed (AWP-SUB-001)."""
    _parse(subscription)


def _parse(subscription: pb.Subscription) -> tuple[str | None, str | None, str]:
    if not subscription.id:
        raise InvalidArgument("subscription id must not be empty")
    case = subscription.WhichOneof("subscription")
    if case == "type_subscription":
        rule = subscription.type_subscription
        if not rule.topic_type:
            raise InvalidArgument("type_subscription.topic_type must not be empty")
        if not rule.agent_type:
            raise InvalidArgument("type_subscription.agent_type must not be empty")
        return rule.topic_type, None, rule.agent_type
    if case == "type_prefix_subscription":
        prefix_rule = subscription.type_prefix_subscription
        if not prefix_rule.topic_type_prefix:
            raise InvalidArgument("type_prefix_subscription.topic_type_prefix must not be empty")
        if not prefix_rule.agent_type:
            raise InvalidArgument("type_prefix_subscription.agent_type must not be empty")
        return None, prefix_rule.topic_type_prefix, prefix_rule.agent_type
    raise InvalidArgument("subscription must set type_subscription or type_prefix_subscription")


class SubscriptionTable:
    """All subscriptions of a host, each owned by the client that added it."""

    __slots__ = ("_by_id", "_by_owner", "_cache", "_exact", "_prefixes")

    def __init__(self) -> None:
        self._by_id: dict[str, _Entry] = {}
        self._by_owner: dict[str, set[str]] = {}
        # topic type -> {agent type: {owner: number of its subscriptions giving it}}
        self._exact: dict[str, dict[str, dict[str, int]]] = {}
        # (prefix, agent type) -> {owner: number of its subscriptions giving it}
        self._prefixes: dict[tuple[str, str], dict[str, int]] = {}
        self._cache: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, owner: str, subscription: pb.Subscription) -> bool:
        """Add ``subscription`` owned by ``owner``; return False if it was already there.

        Raises InvalidArgument for a malformed subscription and AlreadyExists when the id is
        taken by a different subscription or another owner.
        """
        exact, prefix, agent_type = _parse(subscription)
        existing = self._by_id.get(subscription.id)
        if existing is not None:
            if existing.owner == owner and existing.subscription == subscription:
                return False
            raise AlreadyExists(f"subscription id {subscription.id!r} already exists")
        copy = pb.Subscription()
        copy.CopyFrom(subscription)
        entry = _Entry(owner, copy, exact, prefix, agent_type)
        self._by_id[subscription.id] = entry
        self._by_owner.setdefault(owner, set()).add(subscription.id)
        if exact is not None:
            owners = self._exact.setdefault(exact, {}).setdefault(agent_type, {})
        else:
            owners = self._prefixes.setdefault((prefix or "", agent_type), {})
        owners[owner] = owners.get(owner, 0) + 1
        self._cache.clear()
        return True

    def remove(self, owner: str, subscription_id: str) -> None:
        """Remove the subscription ``subscription_id`` owned by ``owner``.

        Raises NotFound for an unknown id and PermissionDenied when another client owns it.
        """
        entry = self._by_id.get(subscription_id)
        if entry is None:
            raise NotFound(f"subscription {subscription_id!r} does not exist")
        if entry.owner != owner:
            raise PermissionDenied(f"subscription {subscription_id!r} is owned by another client")
        self._drop(subscription_id)

    def remove_owner(self, owner: str) -> int:
        """Remove every subscription owned by ``owner``; return how many were removed."""
        ids = self._by_owner.pop(owner, set())
        for subscription_id in ids:
            self._drop(subscription_id, owner_known=True)
        return len(ids)

    def _drop(self, subscription_id: str, *, owner_known: bool = False) -> None:
        entry = self._by_id.pop(subscription_id)
        if not owner_known:
            owned = self._by_owner.get(entry.owner)
            if owned is not None:
                owned.discard(subscription_id)
                if not owned:
                    del self._by_owner[entry.owner]
        if entry.exact is not None:
            by_type = self._exact[entry.exact]
            if _release(by_type[entry.agent_type], entry.owner):
                del by_type[entry.agent_type]
                if not by_type:
                    del self._exact[entry.exact]
        else:
            pair = (entry.prefix or "", entry.agent_type)
            if _release(self._prefixes[pair], entry.owner):
                del self._prefixes[pair]
        self._cache.clear()

    def all(self) -> list[pb.Subscription]:
        """Return every subscription."""
        return [entry.subscription for entry in self._by_id.values()]

    def agent_types_for(self, topic_type: str) -> Sequence[tuple[str, frozenset[str]]]:
        """Return the distinct agent types subscribed to ``topic_type`` (exact or prefix),
        each with the client-ids owning a matching subscription for it (AWP-SUB-013)."""
        cached = self._cache.get(topic_type)
        if cached is not None:
            return cached
        found: dict[str, set[str]] = {}
        exact = self._exact.get(topic_type)
        if exact:
            for agent_type, owners in exact.items():
                found.setdefault(agent_type, set()).update(owners)
        for (prefix, agent_type), owners in self._prefixes.items():
            if topic_type.startswith(prefix):
                found.setdefault(agent_type, set()).update(owners)
        result = tuple((agent_type, frozenset(owners)) for agent_type, owners in found.items())
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic_type] = result
        return result


def _release(owners: dict[str, int], owner: str) -> bool:
    """Count one subscription of ``owner`` less; return True when none is left at all."""
    owners[owner] -= 1
    if owners[owner] == 0:
        del owners[owner]
    return not owners
