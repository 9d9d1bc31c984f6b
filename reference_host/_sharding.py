"""Rendezvous (highest-random-weight) hashing: which member of a shared agent type serves a key.

score(member) = the first 8 bytes, big-endian, of SHA-256(client_id "\\0" agent_type "\\0" key).
The member with the highest score wins; equal scores go to the lower client_id. A key therefore
stays on one member while membership is unchanged, and when a member leaves or joins only the
keys it loses or wins move (AWP-SHR-001).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def rendezvous_score(client_id: str, agent_type: str, key: str) -> int:
    """Return the 64-bit score of ``client_id`` for the agent ``(agent_type, key)``."""
    material = f"{client_id}\0{agent_type}\0{key}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big")


def choose_member(client_ids: Iterable[str], agent_type: str, key: str) -> str | None:
    """Return the client_id that serves ``(agent_type, key)``, or None if there are none."""
    best: str | None = None
    best_score = -1
    for client_id in client_ids:
        score = rendezvous_score(client_id, agent_type, key)
        if score > best_score or (score == best_score and best is not None and client_id < best):
            best, best_score = client_id, score
    return best
