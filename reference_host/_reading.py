"""The read loop shared by data and control channels.

One loop per channel reads frames in order and hands each to the channel's router. Before each
read it checks the channel's owed frames: while frames the host owes the channel are held back
behind its full queue, it stops reading (AWP-FLOW-008), so a peer that does not read cannot make
the host hold more for it. A frame whose bytes do not decode ends the stream with ``INTERNAL``
(AWP-CONN-014).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError

from ._connection import Channel
from ._logging import log
from ._outbound import Outbound

_logger = logging.getLogger("reference_host.reading")

Frame = TypeVar("Frame")


async def owed_drained(outbound: Outbound, timeout_s: float) -> bool:
    """Wait until ``outbound`` holds back no owed frame; return False when no frame was written
    for ``timeout_s`` seconds meanwhile (the peer stopped reading)."""
    while outbound.backlogged:
        written = outbound.written
        if await outbound.wait_owed(timeout_s):
            return True
        if outbound.written == written:
            return False
    return True


async def read_frames(
    conn: Channel,
    frames: AsyncIterator[Frame],
    handle: Callable[[Frame], Awaitable[None] | None],
    *,
    slow_timeout_s: float,
    on_slow: Callable[[], None],
) -> None:
    """Read ``conn``'s frames in order until the peer stops sending or the channel closes.

    ``handle`` routes one frame; it returns an awaitable only when routing must wait for room in
    a destination queue. ``on_slow`` ends the channel when its owed frames stayed held back for
    ``slow_timeout_s`` seconds without progress.
    """
    iterator = frames.__aiter__()
    outbound = conn.outbound
    try:
        while True:
            if outbound.backlogged and not await owed_drained(outbound, slow_timeout_s):
                on_slow()
                break
            try:
                frame = await iterator.__anext__()
            except StopAsyncIteration:
                break
            except DecodeError as exc:
                # The sender broke the framing: end its stream only, with INTERNAL.
                log(
                    _logger,
                    logging.WARNING,
                    "channel.undecodable_frame",
                    client_id=conn.client_id,
                    connection_id=conn.connection_id,
                    error=str(exc),
                )
                conn.terminate(grpc.StatusCode.INTERNAL, f"a frame does not decode: {exc}")
                break
            except (grpc.RpcError, grpc.aio.BaseError) as exc:
                # The peer went away.
                log(
                    _logger,
                    logging.DEBUG,
                    "channel.read_failed",
                    client_id=conn.client_id,
                    connection_id=conn.connection_id,
                    error=repr(exc),
                )
                break
            if conn.closed:
                break
            waiting = handle(frame)
            if waiting is not None:
                await waiting
    finally:
        conn.end()
