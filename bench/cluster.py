"""Host cluster benchmark: 1 vs 2 vs 3 nodes over NATS, workers spread across the nodes.

    .venv/bin/python -m bench.cluster            # 3 rounds, about 9 minutes
    .venv/bin/python -m bench.cluster --quick    # one round, shorter windows

Same load clients and measurements as ``python -m bench`` (bench/scenarios.py). A cluster of N
nodes stands in for the host: each worker a measurement opens goes to the next node in turn, so
the caller and the responder, and the publisher and each subscriber, sit on different nodes
whenever N > 1. "Host CPU" sums every node and the NATS server.

As in ``python -m bench``, a run has rounds: in each, every cluster size is started and measured
on every scenario, the sizes' order rotating from round to round so that slow drifts of the
machine's load fall on all of them alike, and the table gives medians over rounds. Results go to
bench/results/cluster.json (every measurement and the medians) and bench/results/cluster.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Final

from reference_host.cluster.local import LocalCluster

from .scenarios import SCENARIO_BY_NAME, Timing, measure
from .subjects import OURS, OURS_BATCHED, CpuSample, cpu_sample

RESULTS: Final = Path(__file__).resolve().parent / "results"
SCENARIOS: Final = ("rpc_c1", "rpc_c64", "pub_s4")
MODES: Final = (OURS, OURS_BATCHED)


class ClusterHost:
    """What the measurements need from a host (bench/subjects.HostProcess), for a cluster."""

    def __init__(self, cluster: LocalCluster) -> None:
        self._cluster = cluster
        self._next = itertools.cycle(cluster.addresses)
        # CPU seconds of each process (nodes, then NATS) at each ``cpu`` call: a measurement
        # calls it when its window opens and closes.
        self.samples: list[list[float]] = []

    @property
    def address(self) -> str:
        """Return the next node's address: consecutive workers land on different nodes."""
        return next(self._next)

    def pids(self) -> list[int]:
        """Return the pids of the nodes and of the NATS server."""
        pids = [n.process.pid for n in self._cluster.nodes if n.process is not None]
        if self._cluster.nats is not None and self._cluster.nats.pid is not None:
            pids.append(self._cluster.nats.pid)
        return pids

    def cpu(self) -> CpuSample:
        """Return the CPU time of every node and the NATS server, summed."""
        samples = [cpu_sample(pid) for pid in self.pids()]
        self.samples.append([s.stat_s for s in samples])
        fine = [s.sched_s for s in samples]
        return CpuSample(
            sum(s.stat_s for s in samples),
            None if any(f is None for f in fine) else sum(f for f in fine if f is not None),
        )

    def alive(self) -> bool:
        """Return True while every node runs."""
        return all(n.process is not None and n.process.poll() is None for n in self._cluster.nodes)


async def run(nodes_list: list[int], timing: Timing, rounds: int) -> list[dict[str, Any]]:
    """Measure every scenario in both modes for each cluster size, ``rounds`` times."""
    rows: list[dict[str, Any]] = []
    for round_index in range(rounds):
        shift = round_index % len(nodes_list)
        for nodes in nodes_list[shift:] + nodes_list[:shift]:
            cluster = LocalCluster(nodes, name=f"bench{nodes}r{round_index}")
            await asyncio.to_thread(cluster.start)
            try:
                host = ClusterHost(cluster)
                for subject in MODES:
                    for name in SCENARIOS:
                        scenario = SCENARIO_BY_NAME[name]
                        tag = f"n{nodes}-{subject.name}-{name}-{time.monotonic_ns()}"
                        host.samples.clear()
                        result = await measure(host, subject, scenario, timing, tag)  # type: ignore[arg-type]
                        row = {
                            "round": round_index,
                            "nodes": nodes,
                            "mode": subject.name,
                            "scenario": name,
                            **result,
                        }
                        row.update(_split(host.samples, result.get("messages") or 0, nodes))
                        rows.append(row)
                        print(f"round {round_index + 1}/{rounds} {_line(row)}", flush=True)
            finally:
                await asyncio.to_thread(cluster.stop)
    return rows


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per (nodes, mode, scenario): the medians over rounds of each figure."""
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["nodes"], row["mode"], row["scenario"]), []).append(row)
    result: list[dict[str, Any]] = []
    mode_names = [subject.name for subject in MODES]
    for (nodes, mode, scenario), group in sorted(
        groups.items(),
        key=lambda item: (item[0][0], mode_names.index(item[0][1]), SCENARIOS.index(item[0][2])),
    ):
        merged: dict[str, Any] = {
            "nodes": nodes,
            "mode": mode,
            "scenario": scenario,
            "rounds": len(group),
        }
        for key in ("rate", "p50_ms", "p99_ms", "host_cpu_us_per_msg", "nats_cpu_us_per_msg"):
            values = [r[key] for r in group if r.get(key) is not None]
            merged[key] = statistics.median(values) if values else None
        per_node = [r["node_cpu_us_per_msg"] for r in group if r.get("node_cpu_us_per_msg")]
        if per_node:
            merged["node_cpu_us_per_msg"] = [
                round(statistics.median(column), 2) for column in zip(*per_node, strict=True)
            ]
        result.append(merged)
    return result


def _split(samples: list[list[float]], messages: int, nodes: int) -> dict[str, Any]:
    """Return the window's CPU per message of each node and of the NATS server."""
    if len(samples) < 2 or not messages or len(samples[-1]) != nodes + 1:
        return {}
    before, after = samples[-2], samples[-1]
    used = [(b - a) * 1e6 / messages for a, b in zip(before, after, strict=True)]
    return {
        "node_cpu_us_per_msg": [round(x, 2) for x in used[:nodes]],
        "nats_cpu_us_per_msg": round(used[nodes], 2),
    }


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['nodes']} node(s) {row['mode']:<13} {row['scenario']:<8} "
        f"{row['rate']:>9.0f}/s  p50 {row.get('p50_ms') or 0:>7.2f} ms  "
        f"p99 {row.get('p99_ms') or 0:>7.2f} ms  "
        f"cpu {row.get('host_cpu_us_per_msg') or 0:>6.1f} us/msg "
        f"(nodes {row.get('node_cpu_us_per_msg')}, NATS {row.get('nats_cpu_us_per_msg')})"
    )


def table(rows: list[dict[str, Any]]) -> str:
    """Return the results and the ratios to one node as a Markdown table."""
    base = {(r["mode"], r["scenario"]): r for r in rows if r["nodes"] == 1}
    lines = [
        "| nodes | mode | scenario | rate/s | x 1 node | p50 ms | p99 ms | CPU us/msg "
        "(nodes + NATS) | x 1 node | of which NATS | per node |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = base.get((r["mode"], r["scenario"]))
        rate_ratio = r["rate"] / b["rate"] if b and b["rate"] else None
        cpu, b_cpu = r.get("host_cpu_us_per_msg"), b.get("host_cpu_us_per_msg") if b else None
        cpu_ratio = cpu / b_cpu if cpu and b_cpu else None
        nats = r.get("nats_cpu_us_per_msg")
        per_node = " / ".join(f"{x:.1f}" for x in r.get("node_cpu_us_per_msg") or [])
        split = f" {'-' if nats is None else f'{nats:.1f}'} | {per_node or '-'} |"
        lines.append(
            (
                f"| {r['nodes']} | {r['mode']} | {r['scenario']} | {r['rate']:.0f} | "
                f"{rate_ratio:.2f} | {r.get('p50_ms') or 0:.2f} | {r.get('p99_ms') or 0:.2f} | "
                f"{cpu or 0:.1f} | {cpu_ratio:.2f} |"
                if rate_ratio is not None and cpu_ratio is not None
                else f"| {r['nodes']} | {r['mode']} | {r['scenario']} | {r['rate']:.0f} | - | "
                f"{r.get('p50_ms') or 0:.2f} | {r.get('p99_ms') or 0:.2f} | {cpu or 0:.1f} | - |"
            )
            + split
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the cluster benchmark and write its results."""
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round, short windows")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument("--nodes", default="1,2,3", help="cluster sizes (default 1,2,3)")
    args = parser.parse_args(argv)
    timing = Timing(warmup_s=1.0, duration_s=3.0) if args.quick else Timing(2.0, 5.0)
    rounds = max(1, args.rounds) if args.rounds is not None else (1 if args.quick else 3)
    nodes_list = [int(n) for n in args.nodes.split(",")]
    # The machine may be shared: its load before and after the run says how noisy it was.
    load_before = os.getloadavg()
    rows = asyncio.run(run(nodes_list, timing, rounds))
    summary = medians(rows)
    load_after = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    machine = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (RESULTS / "cluster.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "timing": timing.__dict__,
                "rounds": rounds,
                "medians": summary,
                "rows": rows,
            },
            indent=1,
        )
    )
    text = table(summary)
    load = (
        f"{machine['date']}, {machine['cpus']} CPUs, {rounds} round(s), medians over rounds; "
        f"load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.1f}' for x in load_before)} before the run and "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after it."
    )
    (RESULTS / "cluster.md").write_text(f"# Host cluster benchmark\n\n{load}\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
