"""The host memory bound of spec section 12.3 (AWP-FLOW-010) with the reference host's constants.

The constants were measured on CPython 3.11 / grpcio 1.85 on x86-64 Linux by ``python -m
bench.pressure`` (bench/results/pressure.md) and rounded up with room to spare, so that the bound
holds on a loaded machine; AWP-FLOW-011 asks a host to document them.
"""

from __future__ import annotations

from typing import Final

from ._config import HostConfig

# Resident memory of a started host with no channel open (interpreter, gRPC, modules).
K0_BYTES: Final = 64 * 1024 * 1024
# Per open channel with empty queues: connection state, gRPC call and stream buffers.
KC_BYTES: Final = 256 * 1024
# Per call in flight, request id excluded: the pending entry, its timer and table slots.
KF_BYTES: Final = 1024
# Per owed notice or immediate error reply (message text included), request id excluded.
KN_BYTES: Final = 512


def memory_bound(
    config: HostConfig,
    channels: int,
    *,
    frame_bytes: int | None = None,
    request_id_bytes: int | None = None,
) -> int:
    """Return the most memory the host may hold with ``channels`` open channels, in bytes.

    ``frame_bytes`` and ``request_id_bytes`` bound the frames and request ids the workload
    uses; by default both are the host's ``max_message_bytes``, the worst case.
    """
    frame = config.max_message_bytes if frame_bytes is None else frame_bytes
    request_id = config.max_message_bytes if request_id_bytes is None else request_id_bytes
    per_channel = (
        KC_BYTES
        + config.queue_limit * frame
        + 2 * frame
        + config.max_calls_in_flight * (KF_BYTES + request_id)
        + (config.max_batch_messages + 1) * (KN_BYTES + request_id)
    )
    return K0_BYTES + channels * per_channel
