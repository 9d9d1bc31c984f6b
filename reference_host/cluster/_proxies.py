"""The local cluster's proxies between its nodes and NATS, run on an event loop of their own
(the launcher itself is synchronous), so that one node can be silenced and restored."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from reference_host.cluster._proxy import TcpProxy

__all__ = ["NatsProxies"]

_T = TypeVar("_T")
_CALL_S: Final = 10.0


class NatsProxies:
    """One TcpProxy per node, in front of the same NATS server."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._proxies: dict[str, TcpProxy] = {}

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_S)

    def add(self, nats_url: str) -> str:
        """Start a proxy to ``nats_url``; return the NATS URL that goes through it."""
        target = urlsplit(nats_url)
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 4222)
        self._call(proxy.start())
        self._proxies[proxy.url] = proxy
        return proxy.url

    def freeze(self, url: str) -> None:
        """Silence every connection through the proxy at ``url`` (they stay open)."""
        proxy = self._proxies[url]
        self._call(_run(proxy.freeze))

    def thaw(self, url: str) -> None:
        """Let the proxy at ``url`` forward again."""
        proxy = self._proxies[url]
        self._call(_run(proxy.thaw))

    def close(self) -> None:
        """Close every proxy and stop the loop."""
        for proxy in self._proxies.values():
            self._call(proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CALL_S)
        self._loop.close()


async def _run(action: Any) -> None:
    """Run ``action`` on the proxies' loop (transports belong to it)."""
    action()
