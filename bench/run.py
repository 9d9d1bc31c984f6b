"""Run the host comparison: ``python -m bench [--quick]`` (or ``python bench/run.py``).

Starts every host as a subprocess on a free 127.0.0.1 port, warms each one up, then runs
``rounds`` rounds; in each round every scenario is measured on every subject, the subjects
alternating (their order rotates from round to round). Prints a table and writes
``bench/results/<name>.json`` and ``.md``. ``--profile`` instead runs our host alone, first
sampling its threads' CPU time, then under cProfile, and writes where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):
    # Run as a script (python bench/run.py): make the repository importable, and set the
    # clients' gRPC environment before gRPC is imported.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import clientenv as _clientenv

    _clientenv.apply(sys.argv[1:])

import google.protobuf
import grpc

from bench import clientenv, report, subjects
from bench.scenarios import SCENARIO_BY_NAME, SCENARIOS, MeasurementError, Timing, measure
from bench.subjects import (
    ALL_SUBJECTS,
    BY_NAME,
    DEFAULT_SUBJECTS,
    VENV_AUTOGEN,
    HostProcess,
    Subject,
)

RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"

MODES: Final = {
    # name: (timing, rounds)
    "full": (Timing(warmup_s=0.5, duration_s=2.0), 3),
    "quick": (Timing(warmup_s=0.25, duration_s=0.6, drain_s=3.0), 1),
    "tiny": (Timing(warmup_s=0.1, duration_s=0.3, drain_s=3.0), 1),
}

Progress = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


def machine_info(with_autogen: bool) -> dict[str, Any]:
    """Describe the machine and the software versions."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "client_grpc": clientenv.client_setting(),
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=subjects.REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        info["commit"] = commit or None
    except OSError:
        info["commit"] = None
    if with_autogen:
        script = (
            "import json, platform, importlib.metadata as m; print(json.dumps({'python': "
            "platform.python_version(), **{p: m.version(p) for p in ('autogen-core', "
            "'autogen-ext', 'grpcio', 'protobuf')}}))"
        )
        try:
            out = subprocess.run(
                [str(subjects.AUTOGEN_PYTHON), "-I", "-c", script],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            versions = json.loads(out)
            info["autogen"] = ", ".join(f"{key} {value}" for key, value in versions.items())
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            info["autogen"] = f"unknown ({exc})"
    return info


async def _start_hosts(chosen: Sequence[Subject], log_dir: Path) -> dict[str, HostProcess]:
    hosts = {subject.name: HostProcess(subject, log_dir) for subject in chosen}
    results = await asyncio.gather(
        *(host.start() for host in hosts.values()), return_exceptions=True
    )
    errors = [result for result in results if isinstance(result, BaseException)]
    if errors:
        for host in hosts.values():
            host.stop()
        raise errors[0]
    return hosts


async def run_bench(
    subject_names: Sequence[str],
    scenario_names: Sequence[str],
    rounds: int,
    timing: Timing,
    mode: str,
    progress: Progress = _print,
    retries: int = 1,
    disturbed_cores: float | None = None,
) -> dict[str, Any]:
    """Run the comparison and return the full result (config, measurements, summary).

    A measurement during which other processes kept more than ``disturbed_cores`` cores busy
    (default a quarter of the machine) is repeated up to ``retries`` times while the retry time
    budget (half the run's planned measuring time) lasts; the least disturbed attempt is kept.
    """
    chosen = [BY_NAME[name] for name in subject_names]
    if disturbed_cores is None:
        disturbed_cores = 0.25 * len(os.sched_getaffinity(0))
    attempt_s = timing.warmup_s + timing.duration_s + 1.0
    retry_budget_s = 0.5 * rounds * len(chosen) * len(scenario_names) * attempt_s
    retried = 0
    scenarios = [SCENARIO_BY_NAME[name] for name in scenario_names]
    with_autogen = any(subject.venv == VENV_AUTOGEN for subject in chosen)
    if with_autogen:
        progress("preparing interop/autogen/.venv (interop/autogen/setup.sh)")
        subjects.ensure_autogen()
    machine = machine_info(with_autogen)
    started = time.monotonic()
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    log_dir = subjects.make_log_dir()
    progress(f"starting {', '.join(subject_names)} (logs in {log_dir})")
    hosts = await _start_hosts(chosen, log_dir)
    measurements: list[dict[str, Any]] = []
    errors: list[str] = []
    sequence = 0
    try:
        # Warm-up: one short unrecorded RPC run per host (imports, caches, first connections).
        warm = replace(timing, duration_s=min(timing.duration_s, 0.3))
        for subject in chosen:
            sequence += 1
            try:
                await measure(hosts[subject.name], subject, SCENARIOS[1], warm, f"w{sequence}")
            except MeasurementError as exc:
                errors.append(f"warm-up {subject.name}: {exc}")
                progress(f"warm-up {subject.name} failed: {exc}")
        for round_index in range(rounds):
            shift = round_index % len(chosen)
            order = chosen[shift:] + chosen[:shift]
            for scenario in scenarios:
                for subject in order:
                    sequence += 1
                    entry: dict[str, Any] = {
                        "round": round_index,
                        "scenario": scenario.name,
                        "subject": subject.name,
                    }
                    host = hosts[subject.name]
                    try:
                        best: dict[str, Any] | None = None
                        for attempt in range(1 + max(0, retries)):
                            if not host.alive():
                                raise MeasurementError(f"{subject.name} is not running")
                            tag = f"m{sequence}a{attempt}"
                            attempt_result = await measure(host, subject, scenario, timing, tag)
                            attempt_result["attempts"] = attempt + 1
                            other = attempt_result["other_util"]
                            if best is None or other < best["other_util"]:
                                best = attempt_result
                            if other <= disturbed_cores or retry_budget_s <= 0:
                                break
                            if attempt < retries:
                                retry_budget_s -= attempt_s
                                retried += 1
                        assert best is not None
                        entry.update(best)
                        entry["disturbed"] = best["other_util"] > disturbed_cores
                        progress(
                            f"round {round_index + 1}/{rounds} {scenario.name:<8} "
                            f"{subject.name:<13} {entry['rate']:>11,.0f} {entry['unit']:<13}"
                            f" host CPU {entry['host_cpu_us_per_msg'] or 0:7.1f} us/msg"
                            f"  other {entry['other_util']:.2f} cores"
                            f"{' (disturbed)' if entry['disturbed'] else ''}"
                            f"{'' if entry['complete'] else '  INCOMPLETE'}"
                        )
                    except MeasurementError as exc:
                        entry["error"] = str(exc)
                        errors.append(f"round {round_index + 1} {scenario.name} {exc}")
                        progress(f"round {round_index + 1}/{rounds} {scenario.name} {exc}")
                    measurements.append(entry)
    finally:
        for host in hosts.values():
            host.stop()
    if errors:
        progress(f"host logs kept in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, Any] = {
        "date": date,
        "wall_s": time.monotonic() - started,
        "machine": machine,
        "config": {
            "mode": mode,
            "subjects": list(subject_names),
            "subject_descriptions": {s.name: s.description for s in chosen},
            "scenarios": list(scenario_names),
            "rounds": rounds,
            "retries": retries,
            "disturbed_cores": disturbed_cores,
            **asdict(timing),
        },
        "measurements": measurements,
    }
    result["summary"] = report.summarize(measurements, subject_names, scenario_names)
    result["targets"] = report.targets(result["summary"])
    result["checks"] = {
        "measurements": len(measurements),
        "failed": sum(1 for m in measurements if "error" in m),
        "incomplete": sum(1 for m in measurements if "error" not in m and not m["complete"]),
        "retried": retried,
        "disturbed": sum(1 for m in measurements if m.get("disturbed")),
        "errors": errors,
    }
    return result


def write_results(result: dict[str, Any], out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    md_path.write_text(report.markdown(result))
    return json_path, md_path


# -- profiling ---------------------------------------------------------------------------------


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of process ``pid`` (threads of one name summed)."""
    out: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    task_dir = Path(f"/proc/{pid}/task")
    for task in task_dir.iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


async def run_profile(
    scenario_names: Sequence[str], timing: Timing, out_dir: Path, progress: Progress = _print
) -> Path:
    """Profile our host: per-thread CPU, then cProfile of the main thread (``out_dir`` exists)."""
    log_dir = subjects.make_log_dir()
    report_lines = [
        "# Where our host's time goes",
        "",
        f"date {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}, "
        f"scenarios {', '.join(scenario_names)}, window {timing.duration_s} s each",
        "",
    ]
    for subject in (BY_NAME["ours"], BY_NAME["ours_batched"]):
        host = HostProcess(subject, log_dir)
        await host.start()
        try:
            before = _thread_cpu(host.pid)
            for index, name in enumerate(scenario_names):
                await measure(host, subject, SCENARIO_BY_NAME[name], timing, f"t{index}")
            after = _thread_cpu(host.pid)
        finally:
            host.stop()
        deltas = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
        total = sum(deltas.values()) or 1.0
        report_lines += [f"## {subject.name}: host CPU by thread", "", "| thread | CPU s | share |"]
        report_lines.append("|---|---:|---:|")
        for name, seconds in sorted(deltas.items(), key=lambda item: -item[1]):
            if seconds > 0:
                report_lines.append(f"| {name} | {seconds:.2f} | {seconds / total:.0%} |")
        report_lines.append("")

        stats_path = out_dir / f"profile_{subject.name}.pstats"
        profiled = _ProfiledHost(subject, log_dir, stats_path)
        await profiled.start()
        try:
            for index, name in enumerate(scenario_names):
                result = await measure(
                    profiled, subject, SCENARIO_BY_NAME[name], timing, f"p{index}"
                )
                progress(f"profiled {subject.name} {name}: {result['rate']:,.0f} {result['unit']}")
        finally:
            profiled.stop()
        stats = pstats.Stats(str(stats_path))
        report_lines += [
            f"## {subject.name}: cProfile of the main thread, CPU time (top 30 by own time)",
            "",
            "```",
            *_top_functions(stats, 30),
            "```",
            "",
        ]
    path = out_dir / "profile.md"
    path.write_text("\n".join(report_lines) + "\n")
    shutil.rmtree(log_dir, ignore_errors=True)
    return path


def _top_functions(stats: pstats.Stats, limit: int) -> list[str]:
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    rows = sorted(raw.items(), key=lambda item: -item[1][2])[:limit]
    lines = [f"{'own s':>8} {'share':>6} {'cum s':>8} {'calls':>9}  function"]
    for (filename, line, func), (_, calls, own, cumulative, _) in rows:
        where = filename
        marker = "site-packages/"
        stdlib = str(Path(os.__file__).parent) + "/"
        if marker in where:
            where = where.split(marker, 1)[1]
        elif where.startswith(stdlib):
            where = where[len(stdlib) :]
        elif str(subjects.REPO) in where:
            where = where.replace(str(subjects.REPO) + "/", "")
        lines.append(
            f"{own:8.3f} {own / total:6.1%} {cumulative:8.3f} {calls:9d}  {where}:{line}({func})"
        )
    return lines


class _ProfiledHost(HostProcess):
    """Our host under bench/profile_host.py; stats are written when it stops on SIGTERM."""

    def __init__(self, subject: Subject, log_dir: Path, stats_path: Path) -> None:
        super().__init__(subject, log_dir)
        self._stats_path = stats_path

    def command(self) -> list[str]:
        python, _, module, *host_args = super().command()
        assert module == "reference_host"
        return [python, "-m", "bench.profile_host", str(self._stats_path), *host_args]


# -- command line ------------------------------------------------------------------------------


def _names(value: str, known: Sequence[str], what: str) -> list[str]:
    names = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    subject_names = [s.name for s in ALL_SUBJECTS]
    scenario_names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Compare our reference host with AutoGen's host and a bare gRPC relay.",
    )
    parser.add_argument("--quick", action="store_true", help="one short round (under a minute)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per measurement")
    parser.add_argument("--duration", type=float, help="measured seconds per measurement")
    parser.add_argument("--payload-bytes", type=int, help="payload size (default 64)")
    parser.add_argument(
        "--publish-window", type=int, help="events in flight when publishing (default 256)"
    )
    parser.add_argument(
        "--subjects",
        type=lambda v: _names(v, subject_names, "subject"),
        default=[s.name for s in DEFAULT_SUBJECTS],
        help=f"comma-separated, from {','.join(subject_names)} "
        f"(default {','.join(s.name for s in DEFAULT_SUBJECTS)})",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda v: _names(v, scenario_names, "scenario"),
        default=scenario_names,
        help=f"comma-separated subset of {','.join(scenario_names)}",
    )
    parser.add_argument(
        "--no-autogen",
        action="store_true",
        help="leave out every subject that needs interop/autogen/.venv",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="results directory (default bench/results)"
    )
    parser.add_argument("--name", default="latest", help="results file name (default latest)")
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="repeat a measurement disturbed by other processes up to N times (default 1)",
    )
    parser.add_argument(
        "--disturbed-cores",
        type=float,
        help="cores used by other processes that make a measurement disturbed "
        "(default a quarter of the machine's cores)",
    )
    parser.add_argument(
        clientenv.OPT_OUT,
        action="store_true",
        help="run the load clients with gRPC's default experiments (default: EventEngine I/O "
        "off in the bench process, see bench/clientenv.py)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile our host instead of comparing (writes <out>/profile.md)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    timing, rounds = MODES[mode]
    changes: dict[str, Any] = {}
    if args.warmup is not None:
        changes["warmup_s"] = args.warmup
    if args.duration is not None:
        changes["duration_s"] = args.duration
    if args.payload_bytes is not None:
        changes["payload_bytes"] = args.payload_bytes
    if args.publish_window is not None:
        changes["publish_window"] = args.publish_window
    timing = replace(timing, **changes)
    if args.rounds is not None:
        rounds = max(1, args.rounds)
    if args.profile:
        args.out.mkdir(parents=True, exist_ok=True)
        profile_timing = replace(timing, warmup_s=0.2, duration_s=max(1.0, timing.duration_s))
        path = asyncio.run(run_profile(args.scenarios, profile_timing, args.out))
        print(path.read_text())
        print(f"wrote {path}")
        return 0
    chosen = [
        name
        for name in args.subjects
        if not (args.no_autogen and BY_NAME[name].venv == VENV_AUTOGEN)
    ]
    result = asyncio.run(
        run_bench(
            chosen,
            args.scenarios,
            rounds,
            timing,
            mode,
            retries=args.retries,
            disturbed_cores=args.disturbed_cores,
        )
    )
    json_path, md_path = write_results(result, args.out, args.name)
    print()
    print(report.text_table(result))
    print(f"\nwrote {json_path} and {md_path} ({result['wall_s']:.0f} s)")
    checks = result["checks"]
    return 1 if checks["failed"] or checks["incomplete"] else 0


if __name__ == "__main__":
    sys.exit(main())
