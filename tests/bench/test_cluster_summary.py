"""The cluster benchmark's summary over rounds (bench/cluster.py), without running a cluster."""

from __future__ import annotations

from typing import Any

from bench.cluster import medians, table


def _row(round_index: int, nodes: int, rate: float, cpu: float) -> dict[str, Any]:
    return {
        "round": round_index,
        "nodes": nodes,
        "mode": "ours_batched",
        "scenario": "rpc_c64",
        "rate": rate,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "host_cpu_us_per_msg": cpu,
        "nats_cpu_us_per_msg": 1.0,
        "node_cpu_us_per_msg": [cpu / nodes] * nodes,
    }


def test_medians_over_rounds_and_ratios_to_one_node() -> None:
    rows = [
        _row(0, 1, 100.0, 10.0),
        _row(1, 1, 300.0, 30.0),
        _row(2, 1, 200.0, 20.0),
        _row(0, 2, 90.0, 50.0),
        _row(1, 2, 110.0, 40.0),
        _row(2, 2, 10.0, 35.0),
    ]
    summary = medians(rows)
    assert [(r["nodes"], r["rate"], r["host_cpu_us_per_msg"], r["rounds"]) for r in summary] == [
        (1, 200.0, 20.0, 3),
        (2, 90.0, 40.0, 3),
    ]
    assert summary[1]["node_cpu_us_per_msg"] == [20.0, 20.0]
    text = table(summary)
    # 90 / 200 of the rate, 40 / 20 of the CPU.
    assert "| 2 | ours_batched | rpc_c64 | 90 | 0.45 |" in text
    assert "| 40.0 | 2.00 |" in text
