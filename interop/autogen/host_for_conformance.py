"""AutoGen's own gRPC host, as a subject of the agentworker host conformance suite.

    interop/autogen/.venv/bin/python interop/autogen/host_for_conformance.py --address HOST:PORT

Starts `GrpcWorkerAgentRuntimeHost(address=...)` (autogen-ext 0.7.5) unchanged and serves until
SIGTERM or SIGINT, then stops it with a short grace period and exits 0. It prints one JSON line,
{"event": "ready", "address": ...}, once the server is started. Run by the harness:

    python -m conformance host --legacy -- \
        interop/autogen/.venv/bin/python interop/autogen/host_for_conformance.py --address {address}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntimeHost


async def serve(address: str, grace: int) -> None:
    host = GrpcWorkerAgentRuntimeHost(address=address)
    host.start()
    print(json.dumps({"event": "ready", "address": address}), flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await host.stop(grace=grace)
    print(json.dumps({"event": "stopped"}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--address",
        default=os.environ.get("AGENTWORKER_LISTEN_ADDRESS", "127.0.0.1:50051"),
        help="HOST:PORT to listen on (default: $AGENTWORKER_LISTEN_ADDRESS or 127.0.0.1:50051)",
    )
    parser.add_argument("--grace", type=int, default=2, help="seconds to let calls finish on stop")
    parser.add_argument("--log-level", default="WARNING", help="Python logging level for AutoGen")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    asyncio.run(serve(args.address, args.grace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
