"""A tiny asyncio HTTP server that serves the host's metrics as Prometheus text."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from ._metrics import Metrics

_logger = logging.getLogger("reference_host.metrics")
_READ_TIMEOUT_S: Final = 5.0
_MAX_HEADER_BYTES: Final = 16 * 1024


class MetricsServer:
    """Serves ``GET /metrics`` (and ``GET /``) with the Prometheus rendering of ``metrics``."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """Return the bound TCP port (valid after start)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start serving."""
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=_READ_TIMEOUT_S)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=_READ_TIMEOUT_S)
            if len(head) > _MAX_HEADER_BYTES:
                raise ValueError("request head too large")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            if method != "GET":
                await self._reply(writer, "405 Method Not Allowed", b"method not allowed\n")
            elif path.split("?", 1)[0] in ("/metrics", "/"):
                body = self._metrics.render_prometheus().encode("utf-8")
                await self._reply(writer, "200 OK", body, "text/plain; version=0.0.4")
            else:
                await self._reply(writer, "404 Not Found", b"not found\n")
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            ConnectionError,
        ) as exc:
            _logger.debug("metrics request failed: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=_READ_TIMEOUT_S)

    @staticmethod
    async def _reply(
        writer: asyncio.StreamWriter,
        status: str,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        writer.write(head + body)
        await asyncio.wait_for(writer.drain(), timeout=_READ_TIMEOUT_S)
