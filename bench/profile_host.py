"""Run the reference host under cProfile, timing the main thread's CPU, not wall time.

``python -m bench.profile_host STATS_FILE [host arguments...]`` writes pstats data to
STATS_FILE when the host stops (SIGTERM). The default wall-clock timer would charge the event
loop's idle waits in ``epoll`` to the profile; ``time.thread_time`` charges CPU only. gRPC's
Cython layer is not visible to cProfile: its cost shows up as the own time of the Python
function that awaited it (``Outbound.run`` for writes, ``Router.read_loop`` for reads).
"""

from __future__ import annotations

import cProfile
import sys
import time

from reference_host.__main__ import main as host_main


def main() -> int:
    """Profile the host; return its exit status."""
    if len(sys.argv) < 2:
        print("usage: python -m bench.profile_host STATS_FILE [host arguments...]", file=sys.stderr)
        return 2
    stats_file, host_args = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile(time.thread_time)
    try:
        status: int = profiler.runcall(host_main, host_args)
    finally:
        profiler.dump_stats(stats_file)
    return status


if __name__ == "__main__":
    sys.exit(main())
