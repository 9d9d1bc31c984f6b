"""Kill a node of a local cluster, or start it again: a node-fault command for the
conformance harness (``--node-fault-command``).

``python -m reference_host.cluster.fault kill|start ADDRESS --control-dir DIR`` asks the
``reference_host.cluster.local`` launcher that owns the control directory DIR: ``kill`` sends
the node at ADDRESS SIGKILL (it stops renewing its lease and its connections drop) and returns
once it has exited; ``start`` starts a node on that address again, as a new node, and returns
once it accepts connections; ``cut`` silences the node's connection to NATS (it stays open and
nothing passes) and ``restore`` lets it through again. Exit status 0 when done; 1, with the
reason on stderr, when the launcher refused (no node at ADDRESS, say) or did not answer in
time; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from reference_host.cluster._control import (
    ACTIONS,
    read_reply,
    reply_path,
    request_path,
    write_json,
)

# A start waits up to a minute for the node; the launcher answers within that.
_DEFAULT_TIMEOUT_S: Final = 90.0
_POLL_S: Final = 0.02


def request(action: str, address: str, control_dir: Path, timeout_s: float) -> tuple[bool, str]:
    """Ask the launcher of ``control_dir`` to carry out ``action`` on the node at
    ``address``; return (done, message)."""
    if not control_dir.is_dir():
        return False, f"no control directory {control_dir} (is the launcher running?)"
    request_id = uuid.uuid4().hex
    reply = reply_path(control_dir, request_id)
    write_json(request_path(control_dir, request_id), {"action": action, "address": address})
    deadline = time.monotonic() + timeout_s
    while not reply.exists():
        if time.monotonic() > deadline:
            request_path(control_dir, request_id).unlink(missing_ok=True)
            return False, f"the launcher did not answer within {timeout_s:g} s"
        time.sleep(_POLL_S)
    try:
        return read_reply(reply)
    finally:
        reply.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one request; print its outcome."""
    parser = argparse.ArgumentParser(
        prog="python -m reference_host.cluster.fault",
        description="Kill a node of a local cluster (reference_host.cluster.local "
        "--control-dir DIR) or start it again on the same address; cut its connection to "
        "NATS or restore it.",
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("address", metavar="HOST:PORT", help="the node's gRPC address")
    parser.add_argument("--control-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--timeout",
        type=float,
        default=_DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the launcher (default {_DEFAULT_TIMEOUT_S:g})",
    )
    args = parser.parse_args(argv)
    ok, message = request(args.action, args.address, args.control_dir, args.timeout)
    print(message, file=sys.stdout if ok else sys.stderr, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
