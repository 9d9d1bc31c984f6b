"""One connection to the host: channel, handshake, data and control streams, unary calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from agentworker.v1 import agentworker_pb2
from reference_worker._config import TlsConfig
from reference_worker._stub import CANONICAL_SERVICE, AgentRpcStub
from reference_worker._writer import FrameWriter

__all__ = ["Connection", "ConnectionSettings", "HostConnectionError"]

_log = logging.getLogger("reference_worker.connection")

HELLO_KEY = "agentworker-hello-bin"
WELCOME_KEY = "agentworker-welcome-bin"
PROTOCOL_VERSION = 1
IMPLEMENTATION = "reference_worker/0.1.0 (python)"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
UNARY_TIMEOUT = 15.0
# grpc-stubs does not declare the end-of-stream sentinel of grpc.aio.
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]
WELCOME_TIMEOUT = 1.0  # a v1 host sends it at once (AWP-VER-013); a late one still applies

FrameHandler = Callable[[agentworker_pb2.OpenChannelResponse], Awaitable[None]]
ControlHandler = Callable[[agentworker_pb2.OpenControlChannelResponse], Awaitable[None]]


class HostConnectionError(Exception):
    """The host refused or dropped the connection; `code` is the gRPC status when known."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    address: str
    client_id: str
    capabilities: Sequence[agentworker_pb2.Capability]
    tls: TlsConfig | None = None
    token: str | None = None
    max_batch_messages: int = 1024
    open_control_channel: bool = True
    service: str = CANONICAL_SERVICE


def _has_welcome(header: asyncio.Task[Any]) -> bool:
    if header.cancelled() or header.exception() is not None:
        return False
    return any(key == WELCOME_KEY for key, _ in header.result() or ())


def _status_error(action: str, exc: grpc.aio.AioRpcError) -> HostConnectionError:
    return HostConnectionError(f"{action}: {exc.code().name}: {exc.details()}", exc.code())


class Connection:
    """A connection begins when the data channel opens and ends when it closes."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.welcome: agentworker_pb2.ChannelWelcome | None = None
        self.lost = asyncio.Event()
        self.closing = False
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._call: Any = None
        self._control: Any = None
        self._control_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.writer: FrameWriter | None = None

    # -- setup --------------------------------------------------------------------------------

    def metadata(self) -> list[tuple[str, str | bytes]]:
        items: list[tuple[str, str | bytes]] = [("client-id", self.settings.client_id)]
        if self.settings.token:
            items.append(("authorization", f"Bearer {self.settings.token}"))
        return items

    def _make_channel(self) -> grpc.aio.Channel:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        tls = self.settings.tls
        if tls is None:
            return grpc.aio.insecure_channel(self.settings.address, options=options)
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
        )
        return grpc.aio.secure_channel(self.settings.address, credentials, options=options)

    def hello(self) -> agentworker_pb2.ChannelHello:
        return agentworker_pb2.ChannelHello(
            protocol_version=PROTOCOL_VERSION,
            capabilities=list(self.settings.capabilities),
            implementation=IMPLEMENTATION,
            max_batch_messages=self.settings.max_batch_messages,
        )

    def in_force(self, capability: agentworker_pb2.Capability) -> bool:
        """A capability is in force when both hello and welcome list it (AWP-VER-012)."""
        return (
            self.welcome is not None
            and capability in self.settings.capabilities
            and capability in self.welcome.capabilities
        )

    async def open(self, on_frame: FrameHandler, on_control: ControlHandler | None) -> None:
        """Opens the data channel (AWP-VER-010), reads the welcome, opens the control channel.

        Raises HostConnectionError when the host refuses the channel.
        """
        self._channel = self._make_channel()
        self._stub = AgentRpcStub(self._channel, self.settings.service)
        metadata = [*self.metadata(), (HELLO_KEY, self.hello().SerializeToString())]
        self._call = self._stub.OpenChannel(metadata=metadata)
        header = self._spawn(self._call.initial_metadata())
        ended = self._spawn(self._call.code())
        done, _ = await asyncio.wait(
            {header, ended}, timeout=WELCOME_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if header in done and not ended.done() and not _has_welcome(header):
            # A refused call delivers empty metadata together with its status.
            await asyncio.wait({ended}, timeout=0.2)
        if ended.done() or (header in done and header.exception() is not None):
            await asyncio.wait({ended}, timeout=1.0)
            code = ended.result() if ended.done() and not ended.exception() else None
            details = await self._details()
            await self.abort()
            raise HostConnectionError(f"OpenChannel refused: {code}: {details}", code)
        if header in done:
            self._apply_welcome(header.result())
        else:
            # No initial metadata yet: a legacy host sends it with its first frame
            # (AWP-VER-015). Apply a late welcome if one comes.
            header.add_done_callback(self._late_welcome)
        self.writer = FrameWriter(self._call)
        self._configure_writer()
        self.writer.start()
        self._spawn(self._read_data(on_frame))
        if on_control is not None and self.settings.open_control_channel:
            self._control = self._stub.OpenControlChannel(metadata=self.metadata())
            self._spawn(self._read_control(on_control))

    async def _details(self) -> str:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                return str(await self._call.details())
        return ""

    def _apply_welcome(self, metadata: Any) -> None:
        raw = None
        for key, value in metadata or ():
            if key == WELCOME_KEY:
                raw = value
        if raw is None:
            _log.info("host sent no welcome: legacy host, no capabilities in force")
            return
        welcome = agentworker_pb2.ChannelWelcome()
        try:
            welcome.ParseFromString(bytes(raw))
        except DecodeError:
            _log.warning("ignoring a welcome that does not decode: no capabilities in force")
            return
        if welcome.protocol_version != 1:  # another major version: a legacy host (AWP-VER-018)
            _log.warning(
                "host welcome speaks protocol_version %d: no capabilities in force",
                welcome.protocol_version,
            )
            return
        self.welcome = welcome
        _log.debug("welcome: %s", welcome)

    def _late_welcome(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self._apply_welcome(task.result())
        self._configure_writer()

    def _configure_writer(self) -> None:
        if self.writer is None:
            return
        self.writer.batching = self.in_force(agentworker_pb2.CAPABILITY_BATCHING)
        if self.welcome is not None and self.welcome.max_batch_messages:
            self.writer.max_batch = self.welcome.max_batch_messages

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so it is never reported as unhandled

    # -- streams ------------------------------------------------------------------------------

    async def _read_data(self, on_frame: FrameHandler) -> None:
        try:
            while True:
                frame = await self._call.read()
                if frame is _EOF:
                    _log.info("data channel ended by the host")
                    return
                await on_frame(frame)
        except grpc.aio.AioRpcError as exc:
            if not self.closing:
                _log.warning("data channel lost: %s: %s", exc.code().name, exc.details())
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("data channel reader failed")
        finally:
            self.lost.set()
            if self.writer is not None:
                self.writer.abort()

    async def _read_control(self, on_control: ControlHandler) -> None:
        try:
            while True:
                frame = await self._control.read()
                if frame is _EOF:
                    return
                await on_control(frame)
        except grpc.aio.AioRpcError as exc:
            if not self.closing:
                _log.info("control channel ended: %s: %s", exc.code().name, exc.details())
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("control channel reader failed")

    @property
    def has_control_channel(self) -> bool:
        return self._control is not None

    async def write_control(self, frame: agentworker_pb2.OpenControlChannelRequest) -> None:
        if self._control is None:
            raise HostConnectionError("no control channel")
        async with self._control_lock:
            await self._control.write(frame)

    # -- unary calls --------------------------------------------------------------------------

    async def register_agent(self, agent_type: str) -> None:
        try:
            await self._stub.RegisterAgent(
                agentworker_pb2.RegisterAgentRequest(type=agent_type),
                metadata=self.metadata(),
                timeout=UNARY_TIMEOUT,
            )
        except grpc.aio.AioRpcError as exc:
            raise _status_error(f"RegisterAgent({agent_type!r})", exc) from exc

    async def add_subscription(self, subscription: agentworker_pb2.Subscription) -> None:
        try:
            await self._stub.AddSubscription(
                agentworker_pb2.AddSubscriptionRequest(subscription=subscription),
                metadata=self.metadata(),
                timeout=UNARY_TIMEOUT,
            )
        except grpc.aio.AioRpcError as exc:
            raise _status_error(f"AddSubscription({subscription.id!r})", exc) from exc

    async def remove_subscription(self, subscription_id: str) -> None:
        try:
            await self._stub.RemoveSubscription(
                agentworker_pb2.RemoveSubscriptionRequest(id=subscription_id),
                metadata=self.metadata(),
                timeout=UNARY_TIMEOUT,
            )
        except grpc.aio.AioRpcError as exc:
            raise _status_error(f"RemoveSubscription({subscription_id!r})", exc) from exc

    # -- teardown -----------------------------------------------------------------------------

    async def close(self, limit: float = 5.0) -> None:
        """Flushes queued frames, half-closes both streams, waits for the host to end them."""
        self.closing = True
        if self.writer is not None:
            await self.writer.close(limit)
        if self._control is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(limit):
                    async with self._control_lock:
                        await self._control.done_writing()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await self.lost.wait()
        await self.abort()

    async def abort(self) -> None:
        """Ends everything at once."""
        self.closing = True
        if self.writer is not None:
            self.writer.abort()
        for call in (self._call, self._control):
            if call is not None:
                call.cancel()
        if self._channel is not None:
            await self._channel.close(grace=None)
        for task in list(self._tasks):
            task.cancel()
        self.lost.set()
