"""The command line: `host`, `list` and `explain`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Case, Level
from conformance._console import print_case, print_footer, print_header
from conformance._expected import load_expected_failures
from conformance._host_suite import run_host_suite_async, select_host_cases
from conformance._node_fault import node_fault
from conformance._reports import write_reports
from conformance._results import CaseResult, Policy
from conformance._secure_host import secure_commands
from conformance._spec import load_spec_index
from conformance._subject import AttachedSubject, SpawnedSubject, Subject
from conformance._version import HARNESS_VERSION
from conformance._worker_subject import WorkerSubject
from conformance._worker_suite import manifest, run_worker_suite_async, select_worker_cases
from conformance.host_cases import HOST_CASES
from conformance.worker_cases import WORKER_CASES

__all__ = ["main"]

_EPILOG = """\
examples:
  python -m conformance host --address 127.0.0.1:50051
  python -m conformance host --case 'host/rpc/*' -- my-host --listen {address}
  python -m conformance host --token-command 'my-host --listen {address} --tokens {tokens}' \
      -- my-host --listen {address}
  python -m conformance worker -- python -m reference_worker.conformance_agents
  python -m conformance worker --listen 127.0.0.1:50061   # then start your worker
  python -m conformance list --level core
  python -m conformance explain host/rpc/correlation/colliding-request-ids
"""


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--case", action="append", default=[], metavar="GLOB", help="run cases matching GLOB"
    )
    parser.add_argument(
        "--requirement", action="append", default=[], metavar="ID", help="run cases citing ID"
    )
    parser.add_argument(
        "--level",
        action="append",
        default=[],
        choices=[lvl.value for lvl in Level],
        help="run cases of this level",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Conformance suites for agentworker hosts and workers.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    host = sub.add_parser(
        "host",
        help="run the host suite",
        description="Run the host suite against a running host (--address) or against a "
        "host the harness starts: everything after `--` is its command, where {port} and "
        "{address} are replaced (the address is also in AGENTWORKER_LISTEN_ADDRESS). The "
        "TLS, mutual-TLS and bearer-token cases start the host given for each mechanism "
        "(spec 16.3); without it they are not claimed.",
    )
    host.add_argument(
        "--address",
        metavar="HOST:PORT",
        action="append",
        help="attach to a running host; repeat for every node of a host cluster (spec 18), "
        "over which the cases then spread their workers",
    )
    _add_filters(host)
    host.add_argument("--legacy", action="store_true", help="the host serves only /agents.AgentRpc")
    for option, what in (
        ("--tls-command", "TLS with {tls_cert} and {tls_key}"),
        ("--mtls-command", "mutual TLS: {tls_cert}, {tls_key} and client CA {client_ca}"),
        ("--token-command", "bearer tokens from the JSON file {tokens}"),
    ):
        host.add_argument(
            option,
            metavar="CMD",
            help=f"claim the mechanism: its cases start this host command (one shell-quoted "
            f"string; {{address}} and {{port}} are substituted too) configured for {what}",
        )
    host.add_argument(
        "--node-fault-command",
        metavar="CMD",
        help="claim node faults of a host cluster (spec 18.3): a command (one shell-quoted "
        "string, run without a shell) where {action} is kill (the node at {address} is lost "
        "abruptly, as by kill -9) or start (a node serves on {address} again; return once it "
        "accepts connections); it exits 0 when done. Needs --node-lease-ms",
    )
    host.add_argument(
        "--node-lease-ms",
        type=int,
        metavar="L",
        help="the cluster's lease period L in ms (spec 18.1), by which the node-loss cases "
        "bound what they wait for",
    )
    host.add_argument("--timeout-scale", type=float, default=1.0, metavar="F")
    host.add_argument("--expected-failures", type=Path, metavar="FILE")
    host.add_argument("--report-dir", type=Path, metavar="DIR")
    host.add_argument(
        "--require",
        choices=[p.value for p in Policy],
        default=Policy.CORE.value,
        help="fail on MUST failures only (core, default) or on SHOULD failures too",
    )
    worker = sub.add_parser(
        "worker",
        help="run the worker suite",
        description="Run the worker suite: the harness plays the host. Everything after `--` "
        "is the worker's command, started with AGENTWORKER_HOST_ADDRESS in its environment "
        "(spawn mode); or --listen HOST:PORT waits for a worker you start (attach mode).",
    )
    worker.add_argument("--listen", metavar="HOST:PORT", help="attach mode: listen here")
    worker.add_argument(
        "--claim",
        action="append",
        default=[],
        choices=["TLS", "MUTUAL_TLS", "BEARER_TOKEN"],
        help="run the cases of a security capability the worker implements (it announces "
        "them only on connections that use them)",
    )
    _add_filters(worker)
    worker.add_argument("--timeout-scale", type=float, default=1.0, metavar="F")
    worker.add_argument("--expected-failures", type=Path, metavar="FILE")
    worker.add_argument("--report-dir", type=Path, metavar="DIR")
    worker.add_argument(
        "--connect-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds to wait for the worker's first data channel (default 20; attach mode "
        "usually wants more)",
    )
    worker.add_argument(
        "--require",
        choices=[p.value for p in Policy],
        default=Policy.CORE.value,
        help="fail on MUST failures only (core, default) or on SHOULD failures too",
    )
    listing = sub.add_parser("list", help="list the cases")
    _add_filters(listing)
    listing.add_argument("--suite", choices=["host", "worker", "all"], default="all")
    explain = sub.add_parser("explain", help="describe one case, or every requirement")
    explain.add_argument(
        "case_id",
        nargs="?",
        help="the case to describe; without it, list the spec's requirements with their "
        "text and the cases citing each",
    )
    explain.add_argument("--suite", choices=["host", "worker", "all"], default="all")
    return parser


def _levels(values: Sequence[str]) -> list[Level]:
    return [Level(v) for v in values]


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    cases: list[Case[Any]] = []
    if args.suite in ("host", "all"):
        cases += select_host_cases(args.case, args.requirement, _levels(args.level))
    if args.suite in ("worker", "all"):
        cases += select_worker_cases(args.case, args.requirement, _levels(args.level))
    for case in cases:
        out.write(f"{case.id:<55} {case.level.value:<10} {','.join(case.requirements)}\n")
    out.write(f"{len(cases)} cases\n")
    return 0


def _cmd_requirements(suite: str, out: TextIO) -> int:
    spec = load_spec_index()
    cases: list[Case[Any]] = [*HOST_CASES.all(), *WORKER_CASES.all()]
    reqs = [r for r in spec.requirements if suite == "all" or r.subject in (suite, "peer")]
    out.write(f"spec {spec.version}: {len(reqs)} requirements\n")
    for req in reqs:
        citing = [c.id for c in cases if req.id in c.requirements]
        out.write(f"{req.id} ({req.subject}, {req.level}, {req.section})\n    {req.text}\n")
        out.write(f"    cases: {', '.join(citing) if citing else 'none'}\n")
    return 0 if reqs else 1


def _cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    if args.case_id is None:
        return _cmd_requirements(args.suite, out)
    case: Case[Any] | None = HOST_CASES.get(args.case_id) or WORKER_CASES.get(args.case_id)
    if case is None:
        out.write(f"unknown case {args.case_id!r}; see `python -m conformance list`\n")
        return 2
    spec = load_spec_index()
    out.write(f"{case.id}\nlevel: {case.level.value}\n")
    if case.v1_only:
        out.write("needs v1 extensions (not applicable to --legacy runs)\n")
    out.write("requirements:\n")
    for req_id in case.requirements:
        req = spec.get(req_id)
        text = f" ({req.subject}, {req.level}) {req.text}" if req else ""
        out.write(f"  {req_id}{text}\n")
    out.write("\n" + case.description + "\n")
    return 0


def _cmd_host(args: argparse.Namespace, command: list[str], out: TextIO) -> int:
    if (args.address is None) == (not command):
        out.write("give exactly one of --address HOST:PORT or `-- COMMAND...`\n")
        return 2
    if args.timeout_scale <= 0:
        out.write("--timeout-scale must be positive\n")
        return 2
    try:
        secure = secure_commands(args.tls_command, args.mtls_command, args.token_command)
        fault = node_fault(args.node_fault_command, args.node_lease_ms)
    except ValueError as exc:
        out.write(f"{exc}\n")
        return 2
    subject: Subject
    if args.address is not None:
        first, *others = args.address
        subject = AttachedSubject(first, scale=args.timeout_scale, others=tuple(others))
    else:
        subject = SpawnedSubject(command, scale=args.timeout_scale)
    try:
        expected = load_expected_failures(args.expected_failures) if args.expected_failures else []
    except (OSError, ValueError) as exc:
        out.write(f"cannot read the expected failures: {exc}\n")
        return 2
    cases = select_host_cases(args.case, args.requirement, _levels(args.level))
    print_header(HARNESS_VERSION, load_spec_index().version, "host", subject.description, out)
    out.flush()

    def progress(record: CaseResult) -> None:
        print_case(record, out)
        out.flush()

    result = asyncio.run(
        run_host_suite_async(
            subject,
            cases=cases,
            legacy=args.legacy,
            scale=args.timeout_scale,
            expected_failures=expected,
            on_result=progress,
            secure_commands=secure,
            node_fault=fault,
        )
    )
    print_footer(result, out)
    if args.report_dir is not None:
        write_reports(result, args.report_dir)
    return result.exit_code(Policy(args.require))


def _cmd_worker(args: argparse.Namespace, command: list[str], out: TextIO) -> int:
    if (args.listen is None) == (not command):
        out.write("give exactly one of --listen HOST:PORT or `-- COMMAND...`\n")
        return 2
    if args.timeout_scale <= 0:
        out.write("--timeout-scale must be positive\n")
        return 2
    subject = WorkerSubject(
        command or None,
        listen=args.listen or "127.0.0.1:0",
        scale=args.timeout_scale,
        connect_timeout_s=args.connect_timeout,
    )
    try:
        expected = load_expected_failures(args.expected_failures) if args.expected_failures else []
    except (OSError, ValueError) as exc:
        out.write(f"cannot read the expected failures: {exc}\n")
        return 2
    cases = select_worker_cases(args.case, args.requirement, _levels(args.level))
    print_header(HARNESS_VERSION, load_spec_index().version, "worker", subject.description, out)
    if args.listen is not None:
        out.write(
            f"waiting up to {args.connect_timeout * args.timeout_scale:.0f} s for a worker "
            f"at {args.listen} (AGENTWORKER_HOST_ADDRESS={args.listen})\n"
        )
    out.flush()

    def progress(record: CaseResult) -> None:
        print_case(record, out)
        out.flush()

    result = asyncio.run(
        run_worker_suite_async(
            subject,
            cases=cases,
            scale=args.timeout_scale,
            expected_failures=expected,
            on_result=progress,
            claims=[pb.Capability.Value(f"CAPABILITY_{name}") for name in args.claim],
        )
    )
    result.manifest = manifest(subject)
    out.write(f"worker: {result.manifest}\n")
    print_footer(result, out)
    if args.report_dir is not None:
        write_reports(result, args.report_dir)
    return result.exit_code(Policy(args.require))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout if out is None else out
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _cmd_list(args, out)
    if args.command == "explain":
        return _cmd_explain(args, out)
    if args.command == "worker":
        return _cmd_worker(args, command, out)
    return _cmd_host(args, command, out)
