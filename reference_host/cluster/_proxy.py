"""A TCP proxy between one node and NATS, to cut that node off while the others stay connected
(the local cluster's ``cut`` and ``restore`` requests, and the partition tests)."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards connections on a loopback port to ``target``. ``cut()`` aborts every open
    connection and stops listening, so that new ones are refused (as a partition that resets
    connections); ``restore()`` listens on the same port again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.cut_off = False
        self.frozen = False
        self.port = 0

    @property
    def url(self) -> str:
        """The proxy's address as a NATS URL."""
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.cut_off = False
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        ends = [writer]
        self._open.add(writer)
        try:
            if self.cut_off:
                return
            with contextlib.suppress(OSError):
                up_reader, up_writer = await asyncio.open_connection(*self._target)
                ends.append(up_writer)
                self._open.add(up_writer)
                if self.frozen:  # a connection made while frozen is as silent as the others
                    _transport(writer).pause_reading()
                    _transport(up_writer).pause_reading()
                if not self.cut_off:
                    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for end in ends:
                end.transport.abort()
                self._open.discard(end)
            self._handlers.discard(task)

    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones."""
        self.cut_off = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()

    def freeze(self) -> None:
        """Stop forwarding in both directions and keep every connection open: a partition
        that leaves connections silent rather than closed. New connections stay silent too."""
        self.frozen = True
        for writer in list(self._open):
            _transport(writer).pause_reading()

    def thaw(self) -> None:
        """Forward again what the frozen connections hold, and everything after it."""
        self.frozen = False
        for writer in list(self._open):
            _transport(writer).resume_reading()

    async def restore(self) -> None:
        """Let new connections through again."""
        await self.start()

    async def close(self) -> None:
        """Cut everything, stop listening and wait for the connections' handlers to end."""
        self.cut()
        if self._server is not None:
            self._server.close()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()


def _transport(writer: asyncio.StreamWriter) -> asyncio.Transport:
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    return transport
