"""Small tools that mutants use to change one behaviour of the reference host or worker:
replace a method, rewrite the frames a subject sends, or the frames it reads. Each tool is
applied in the subject's own process before the host or worker starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from agentworker.v1 import agentworker_pb2 as pb

__all__ = [
    "host_inbound",
    "host_outbound",
    "replace",
    "worker_inbound",
    "worker_outbound",
]

HostOut = Callable[[Any, pb.OpenChannelResponse], list[pb.OpenChannelResponse]]
HostIn = Callable[[Any, pb.OpenChannelRequest], list[pb.OpenChannelRequest]]
WorkerOut = Callable[[pb.OpenChannelRequest], list[pb.OpenChannelRequest]]
WorkerIn = Callable[[pb.OpenChannelResponse], list[pb.OpenChannelResponse]]


def replace(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)``."""
    setattr(owner, name, make(getattr(owner, name)))


def host_outbound(transform: HostOut) -> None:
    """Pass every data frame the host queues for a worker through ``transform(conn, frame)``,
    which returns the frames to queue instead (none to drop it, two to duplicate it).

    Frames the host owes (error responses, notices) are encoded when they are owed rather than
    when the queue has room, so the transform sees them too."""
    from reference_host import _connection, _outbound

    owners: dict[int, Any] = {}
    owing: list[bool] = []  # set while an owed frame, rewritten already, is being queued

    def make_init(original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            owners[id(self.outbound)] = self

        return init

    def rewrite(outbound: Any, data: bytes) -> list[bytes]:
        conn = owners.get(id(outbound))
        if conn is None or owing:  # a control channel's queue, or rewritten already
            return [data]
        frame = pb.OpenChannelResponse.FromString(data)
        return [f.SerializeToString() for f in transform(conn, frame)]

    def make_offer(original: Any) -> Any:
        def offer(self: Any, frame: bytes) -> bool:
            ok = True
            for data in rewrite(self, frame):
                ok = original(self, data) and ok
            return ok

        return offer

    def make_offer_wait(original: Any) -> Any:
        async def offer_wait(self: Any, frame: bytes, timeout_s: float) -> bool:
            ok = True
            for data in rewrite(self, frame):
                ok = await original(self, data, timeout_s) and ok
            return ok

        return offer_wait

    def make_owe(original: Any) -> Any:
        def owe(self: Any, item: Any) -> None:
            if id(self) not in owners:
                original(self, item)
                return
            for data in rewrite(self, item.encode()):
                owing.append(True)
                try:
                    original(self, _outbound.OwedFrame(data, item.kind))
                finally:
                    owing.pop()

        return owe

    replace(_connection.DataConnection, "__init__", make_init)
    replace(_outbound.Outbound, "offer", make_offer)
    replace(_outbound.Outbound, "offer_wait", make_offer_wait)
    replace(_outbound.Outbound, "owe", make_owe)


def host_inbound(transform: HostIn) -> None:
    """Pass every frame the host reads on a data channel through ``transform(conn, frame)``,
    which returns the frames the host processes instead."""
    from reference_host import _router

    def make(original: Any) -> Any:
        async def read_loop(self: Any, conn: Any, frames: AsyncIterator[Any]) -> None:
            async def rewritten() -> AsyncIterator[Any]:
                async for frame in frames:
                    for out in transform(conn, frame):
                        yield out

            await original(self, conn, rewritten())

        return read_loop

    replace(_router.Router, "read_loop", make)


def worker_outbound(transform: WorkerOut) -> None:
    """Pass every data frame the worker queues for the host through ``transform``."""
    from reference_worker import _writer

    def make(original: Any) -> Any:
        async def put(self: Any, frame: pb.OpenChannelRequest) -> None:
            for out in transform(frame):
                await original(self, out)

        return put

    replace(_writer.FrameWriter, "put", make)


def worker_inbound(transform: WorkerIn) -> None:
    """Pass every data frame the worker reads through ``transform`` before it handles it
    (batches are passed whole; the frames inside them are not passed again)."""
    from reference_worker import _inbound

    inside: list[bool] = []  # set while the frames of a batch are handled

    def make(original: Any) -> Any:
        async def on_frame(self: Any, conn: Any, frame: pb.OpenChannelResponse) -> None:
            if inside:
                await original(self, conn, frame)
                return
            for out in transform(frame):
                inside.append(True)
                try:
                    await original(self, conn, out)
                finally:
                    inside.pop()

        return on_frame

    replace(_inbound.Inbound, "on_frame", make)
