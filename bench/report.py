"""Summaries of a run: medians per subject and scenario, ratios, noise band, targets, tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, Final

from .scenarios import SCENARIO_BY_NAME, Scenario

BASE_AUTOGEN: Final = "autogen"
NOISE_TWIN: Final = "autogen_b"
BASE_RELAY: Final = "relay"
# The relay run with the same gRPC I/O setting as our host's CLI.
BASE_RELAY_SAME_IO: Final = "relay_noee"
OURS: Final = "ours"
OURS_BATCHED: Final = "ours_batched"


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def summarize(
    measurements: list[dict[str, Any]], subjects: Sequence[str], scenarios: Sequence[str]
) -> dict[str, Any]:
    """Return medians over rounds per (scenario, subject), ratios and the noise band."""
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario in scenarios:
        row: dict[str, dict[str, Any]] = {}
        for subject in subjects:
            runs = [
                m
                for m in measurements
                if m["scenario"] == scenario and m["subject"] == subject and "error" not in m
            ]
            failed = [
                m
                for m in measurements
                if m["scenario"] == scenario and m["subject"] == subject and "error" in m
            ]
            if not runs:
                row[subject] = {"runs": 0, "failed": len(failed)}
                continue
            row[subject] = {
                "runs": len(runs),
                "failed": len(failed),
                "rate": _median([m["rate"] for m in runs]),
                "rate_min": min(m["rate"] for m in runs),
                "rate_max": max(m["rate"] for m in runs),
                "p50_ms": _median([m.get("p50_ms") for m in runs]),
                "p99_ms": _median([m.get("p99_ms") for m in runs]),
                "host_cpu_us_per_msg": _median([m.get("host_cpu_us_per_msg") for m in runs]),
                "host_util": _median([m.get("host_util") for m in runs]),
                "client_util": _median([m.get("client_util") for m in runs]),
                "other_util": _median([m.get("other_util") for m in runs]),
                "max_gap_ms": max(m.get("max_gap_ms") or 0.0 for m in runs),
                "complete": all(m.get("complete") for m in runs),
                "disturbed": sum(1 for m in runs if m.get("disturbed")),
                "batching": all(m.get("batching") for m in runs),
            }
        for cell in row.values():
            if cell.get("runs"):
                for base in (BASE_AUTOGEN, BASE_RELAY, BASE_RELAY_SAME_IO):
                    other = row.get(base, {})
                    cell[f"rate_vs_{base}"] = _ratio(cell["rate"], other.get("rate"))
                    cell[f"cpu_vs_{base}"] = _ratio(
                        cell["host_cpu_us_per_msg"], other.get("host_cpu_us_per_msg")
                    )
        cells[scenario] = row
    return {"cells": cells, "noise": noise_band(measurements, scenarios)}


def noise_band(measurements: list[dict[str, Any]], scenarios: Sequence[str]) -> dict[str, Any]:
    """Ratios of the two independent AutoGen host runs, per scenario and per round."""
    band: dict[str, Any] = {}
    all_rate: list[float] = []
    all_cpu: list[float] = []
    for scenario in scenarios:
        by_round: dict[int, dict[str, dict[str, Any]]] = {}
        for m in measurements:
            if m["scenario"] == scenario and "error" not in m:
                by_round.setdefault(m["round"], {})[m["subject"]] = m
        rate_ratios: list[float] = []
        cpu_ratios: list[float] = []
        for pair in by_round.values():
            a, b = pair.get(BASE_AUTOGEN), pair.get(NOISE_TWIN)
            if a is None or b is None:
                continue
            rate = _ratio(b["rate"], a["rate"])
            cpu = _ratio(b.get("host_cpu_us_per_msg"), a.get("host_cpu_us_per_msg"))
            if rate is not None:
                rate_ratios.append(rate)
            if cpu is not None:
                cpu_ratios.append(cpu)
        if rate_ratios:
            band[scenario] = {
                "rate_ratios": rate_ratios,
                "cpu_ratios": cpu_ratios,
            }
            all_rate.extend(rate_ratios)
            all_cpu.extend(cpu_ratios)
    if all_rate:
        band["overall"] = {
            "rate_ratio_min": min(all_rate),
            "rate_ratio_max": max(all_rate),
            "cpu_ratio_min": min(all_cpu) if all_cpu else None,
            "cpu_ratio_max": max(all_cpu) if all_cpu else None,
            # Half the spread of the log-ratio: a difference smaller than this factor is noise.
            "rate_band": max(max(all_rate), 1 / min(all_rate)),
            "cpu_band": max(max(all_cpu), 1 / min(all_cpu)) if all_cpu else None,
        }
    return band


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the figures against the project's targets (reported, never asserted)."""
    cells = summary["cells"]
    band = summary["noise"].get("overall", {})
    rate_band = band.get("rate_band")
    cpu_band = band.get("cpu_band")
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, threshold: float, higher: bool, noise: Any) -> None:
        met: bool | None = None
        if value is not None:
            met = value >= threshold if higher else value < threshold
        within_noise = None
        if value is not None and noise:
            within_noise = (1 / noise) <= value / threshold <= noise
        out.append(
            {
                "target": name,
                "value": value,
                "threshold": threshold,
                "direction": ">=" if higher else "<",
                "met": met,
                "within_noise": within_noise,
            }
        )

    for scenario, row in cells.items():
        ours = row.get(OURS, {})
        if ours.get("runs"):
            if row.get(BASE_RELAY, {}).get("runs"):
                add(f"{scenario}: ours / relay rate", ours["rate_vs_relay"], 1.0, True, rate_band)
            if row.get(BASE_RELAY_SAME_IO, {}).get("runs"):
                add(
                    f"{scenario}: ours / relay_noee rate",
                    ours["rate_vs_relay_noee"],
                    1.0,
                    True,
                    rate_band,
                )
            if row.get(BASE_AUTOGEN, {}).get("runs"):
                add(
                    f"{scenario}: ours / autogen rate",
                    ours["rate_vs_autogen"],
                    1.0,
                    True,
                    rate_band,
                )
                add(
                    f"{scenario}: ours / autogen host CPU per message",
                    ours["cpu_vs_autogen"],
                    1.0,
                    False,
                    cpu_band,
                )
    for scenario in ("pub_s4", "rpc_c64"):
        cell = cells.get(scenario, {}).get(OURS_BATCHED, {})
        if cell.get("runs") and cells[scenario].get(BASE_AUTOGEN, {}).get("runs"):
            add(
                f"{scenario}: ours_batched / autogen rate",
                cell["rate_vs_autogen"],
                10.0,
                True,
                None,
            )
    return out


# -- formatting --------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(result: dict[str, Any]) -> str:
    """Render a run as Markdown."""
    summary = result["summary"]
    cells = summary["cells"]
    subjects: list[str] = result["config"]["subjects"]
    machine = result["machine"]
    lines = [
        "# agentworker bench results",
        "",
        f"- date: {result['date']}",
        f"- machine: {machine['cpu_model']}, nproc {machine['nproc']}, "
        f"load average at start {machine['loadavg_start']}, at end {machine.get('loadavg_end')}",
        f"- ours: Python {machine['python']}, grpcio {machine['grpcio']}, "
        f"protobuf {machine['protobuf']}; commit {machine.get('commit')}",
        f"- AutoGen venv: {machine.get('autogen', '-')}",
        f"- load clients: {machine.get('client_grpc', '-')}",
        f"- mode: {result['config']['mode']}; rounds {result['config']['rounds']}, warm-up "
        f"{result['config']['warmup_s']} s, window {result['config']['duration_s']} s, payload "
        f"{result['config']['payload_bytes']} B, publish window "
        f"{result['config']['publish_window']} events; wall time {result['wall_s']:.0f} s",
        "",
        "Medians over rounds. Rate: RPC/s (caller's completed round trips) or deliveries/s "
        "(events received, summed over subscribers). CPU: host process CPU time per delivered "
        "message (an RPC delivers two: request and response). Ratios are medians / the median "
        "of the base subject in the same run.",
        "",
        "## Throughput",
        "",
        "| scenario | " + " | ".join(subjects) + " |",
        "|---|" + "---:|" * len(subjects),
    ]
    for scenario, row in cells.items():
        label = SCENARIO_BY_NAME[scenario].label
        lines.append(
            f"| {label} | " + " | ".join(_num(row.get(s, {}).get("rate")) for s in subjects) + " |"
        )
    lines += [
        "",
        "## Latency p50 / p99 (ms, RPC)",
        "",
        "| scenario | " + " | ".join(subjects) + " |",
        "|---|" + "---:|" * len(subjects),
    ]
    for scenario, row in cells.items():
        if not scenario.startswith("rpc"):
            continue
        lines.append(
            f"| {SCENARIO_BY_NAME[scenario].label} | "
            + " | ".join(
                f"{_num(row.get(s, {}).get('p50_ms'), 2)} / {_num(row.get(s, {}).get('p99_ms'), 2)}"
                for s in subjects
            )
            + " |"
        )
    lines += [
        "",
        "## Host CPU per delivered message (µs)",
        "",
        "| scenario | " + " | ".join(subjects) + " |",
        "|---|" + "---:|" * len(subjects),
    ]
    for scenario, row in cells.items():
        lines.append(
            f"| {SCENARIO_BY_NAME[scenario].label} | "
            + " | ".join(_num(row.get(s, {}).get("host_cpu_us_per_msg"), 1) for s in subjects)
            + " |"
        )
    lines += [
        "",
        "## Ratios (rate vs AutoGen / vs relay / vs relay_noee; CPU per message vs AutoGen)",
        "",
        "| scenario | " + " | ".join(subjects) + " |",
        "|---|" + "---:|" * len(subjects),
    ]
    for scenario, row in cells.items():
        lines.append(
            f"| {SCENARIO_BY_NAME[scenario].label} | "
            + " | ".join(
                f"{_x(row.get(s, {}).get('rate_vs_autogen'))} / "
                f"{_x(row.get(s, {}).get('rate_vs_relay'))} / "
                f"{_x(row.get(s, {}).get('rate_vs_relay_noee'))} / "
                f"cpu {_x(row.get(s, {}).get('cpu_vs_autogen'))}"
                for s in subjects
            )
            + " |"
        )
    lines += [
        "",
        "## Load conditions (median cores busy: host / load clients / everything else)",
        "",
        "Both the host and the load clients need a core; `other` is CPU used by unrelated "
        "processes during the window. `gap` is the longest pause without progress in any "
        "window (ms). `disturbed` counts rounds in which other processes used more than "
        f"{result['config'].get('disturbed_cores')} cores even after a retry.",
        "",
        "| scenario | " + " | ".join(subjects) + " |",
        "|---|" + "---:|" * len(subjects),
    ]
    for scenario, row in cells.items():
        lines.append(
            f"| {SCENARIO_BY_NAME[scenario].label} | "
            + " | ".join(
                f"{_num(row.get(s, {}).get('host_util'), 2)} / "
                f"{_num(row.get(s, {}).get('client_util'), 2)} / "
                f"{_num(row.get(s, {}).get('other_util'), 2)}, gap "
                f"{_num(row.get(s, {}).get('max_gap_ms'), 0)}"
                + (f", disturbed {row[s]['disturbed']}" if row.get(s, {}).get("disturbed") else "")
                for s in subjects
            )
            + " |"
        )
    noise = summary["noise"]
    lines += ["", "## Noise band (AutoGen's host against itself: autogen_b / autogen)", ""]
    if "overall" in noise:
        overall = noise["overall"]
        lines.append(
            f"Rate ratios range {overall['rate_ratio_min']:.2f} to "
            f"{overall['rate_ratio_max']:.2f}; CPU-per-message ratios "
            f"{_num(overall['cpu_ratio_min'], 2)} to {_num(overall['cpu_ratio_max'], 2)}. "
            f"A difference within a factor of {overall['rate_band']:.2f} (rate) or "
            f"{_num(overall['cpu_band'], 2)} (CPU) is not distinguishable from noise in this run."
        )
        lines.append("")
        lines.append("| scenario | rate ratios per round | CPU ratios per round |")
        lines.append("|---|---|---|")
        for scenario in cells:
            entry = noise.get(scenario)
            if entry is None:
                continue
            lines.append(
                f"| {scenario} | {', '.join(f'{v:.2f}' for v in entry['rate_ratios'])} | "
                f"{', '.join(f'{v:.2f}' for v in entry['cpu_ratios'])} |"
            )
    else:
        lines.append("Not measured (run both `autogen` and `autogen_b`).")
    lines += ["", "## Targets (reported, not asserted)", ""]
    target_rows = result.get("targets", [])
    if target_rows:
        lines.append("| target | value | wanted | met | within noise of the threshold |")
        lines.append("|---|---:|---|---|---|")
        for row in target_rows:
            met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
            noise_flag = {True: "yes", False: "no", None: "-"}[row["within_noise"]]
            lines.append(
                f"| {row['target']} | {_x(row['value'])} | {row['direction']} "
                f"{row['threshold']:g}x | {met} | {noise_flag} |"
            )
    else:
        lines.append("No target applies to the subjects measured.")
    checks = result.get("checks", {})
    lines += [
        "",
        "## Checks",
        "",
        f"- measurements: {checks.get('measurements')}, failed: {checks.get('failed')}, "
        f"incomplete (counts did not match): {checks.get('incomplete')}",
        f"- repeated because other processes were busy: {checks.get('retried')}; still "
        f"disturbed (more than {result['config'].get('disturbed_cores')} cores used by other "
        f"processes) after that: {checks.get('disturbed')}",
    ]
    for error in checks.get("errors", []):
        lines.append(f"- error: {error}")
    return "\n".join(lines) + "\n"


def text_table(result: dict[str, Any]) -> str:
    """A compact table for the terminal."""
    cells = result["summary"]["cells"]
    subjects: list[str] = result["config"]["subjects"]
    width = 22
    head = f"{'scenario':<10}" + "".join(f"{s:>{width}}" for s in subjects)
    lines = [
        "rate (median) | p99 ms | host CPU us/msg | rate vs autogen",
        head,
        "-" * len(head),
    ]
    for scenario, row in cells.items():
        parts = []
        for subject in subjects:
            cell = row.get(subject, {})
            if not cell.get("runs"):
                parts.append(f"{'failed':>{width}}")
                continue
            rate = _num(cell["rate"])
            p99 = _num(cell.get("p99_ms"), 1) if scenario.startswith("rpc") else ""
            cpu = _num(cell.get("host_cpu_us_per_msg"), 0)
            ratio = _x(cell.get("rate_vs_autogen"))
            text = f"{rate}|{p99}|{cpu}|{ratio}" if p99 else f"{rate}|{cpu}|{ratio}"
            parts.append(f"{text:>{width}}")
        lines.append(f"{scenario:<10}" + "".join(parts))
    noise = result["summary"]["noise"].get("overall")
    if noise:
        lines.append(
            f"noise band (autogen_b/autogen): rate {noise['rate_ratio_min']:.2f}.."
            f"{noise['rate_ratio_max']:.2f}, CPU {_num(noise['cpu_ratio_min'], 2)}.."
            f"{_num(noise['cpu_ratio_max'], 2)}"
        )
    for row in result.get("targets", []):
        met = {True: "met", False: "MISSED", None: "n/a"}[row["met"]]
        if row["met"] is False and row["within_noise"]:
            met += " (within the noise band)"
        lines.append(
            f"target {row['target']}: {_x(row['value'])} ({row['direction']} "
            f"{row['threshold']:g}x) {met}"
        )
    return "\n".join(lines)


def scenario_labels(names: Sequence[str]) -> list[Scenario]:
    """Return the scenarios named ``names``."""
    return [SCENARIO_BY_NAME[name] for name in names]
