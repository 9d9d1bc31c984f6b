"""A test's own NATS client on the cluster's shared state, to watch what the nodes write."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import nats
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from reference_host.cluster import _codec


@contextlib.asynccontextmanager
async def nats_client(url: str) -> AsyncIterator[NatsClient]:
    """A plain NATS connection, closed on exit."""
    client = await nats.connect(servers=[url], allow_reconnect=False, connect_timeout=5)
    try:
        yield client
    finally:
        await client.close()


async def shared_state(client: NatsClient, cluster_name: str) -> KeyValue:
    """The cluster's key-value bucket (the nodes create it when the first one starts)."""
    return await client.jetstream().key_value(f"awp_{cluster_name}")


def node_key(member: str) -> str:
    """The key of ``member``'s lease."""
    return _codec.key(_codec.KIND_NODE, member)


def client_key(client_id: str) -> str:
    """The key of ``client_id``'s data-channel claim."""
    return _codec.key(_codec.KIND_CLIENT, client_id)


def lease_node_id(value: bytes) -> str:
    """The node id a lease names."""
    return str(json.loads(value)["node_id"])
