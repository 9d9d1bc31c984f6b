"""Run AutoGen's gRPC host, unchanged, until SIGTERM or SIGINT.

Runs under interop/autogen/.venv/bin/python (AutoGen 0.7.5 and its own grpcio); it imports
nothing from this project. The bench starts it as a subprocess:

    interop/autogen/.venv/bin/python -I bench/autogen_host.py --address 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import sys

# Installed in interop/autogen/.venv only.
from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntimeHost  # type: ignore[import-not-found]


async def _serve(address: str) -> None:
    host = GrpcWorkerAgentRuntimeHost(address=address)
    host.start()
    print(f"autogen host listening on {address}", flush=True)
    await host.stop_when_signal(grace=1)


def main() -> int:
    """Parse the address and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True, help="HOST:PORT to serve on")
    args = parser.parse_args()
    asyncio.run(_serve(args.address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
