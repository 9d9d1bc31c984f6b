#!/usr/bin/env bash
# Runs both agentworker conformance suites against AutoGen 0.7.5 and writes their reports:
#
#   reports/conformance/autogen_worker/  worker suite, subject conformance_adapter.py (an
#                                        AutoGen GrpcWorkerAgentRuntime; the harness plays the host)
#   reports/conformance/autogen_host/    host suite (--legacy), subject AutoGen's own
#                                        GrpcWorkerAgentRuntimeHost (host_for_conformance.py)
#
# each with console.txt, report.json, junit.xml and report.html, and then rewrites
# interop/autogen/REPORT.md from both report.json files (write_report.py).
#
#   interop/autogen/run_conformance.sh [extra options for both suites, e.g. --case GLOB]
#
# Builds the AutoGen virtualenv first (setup.sh, instant when up to date). AutoGen is the
# subject being documented, so failed cases do not fail this script: it exits 0 when both
# suites produced a result, and non-zero when either could not run (NO RESULT, or no report).
set -uo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
AG=interop/autogen/.venv/bin/python
OUT=reports/conformance
status=0

interop/autogen/setup.sh || {
    echo "autogen conformance: interop/autogen/setup.sh failed" >&2
    exit 3
}

# run SUBJECT SUITE ARGS... : one suite run, its console output kept beside its reports.
run() {
    local subject=$1 suite=$2
    shift 2
    local dir="$OUT/$subject"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "autogen conformance: $subject"
    timeout 1200 "$PY" -m conformance "$suite" --report-dir "$dir" "$@" >"$dir/console.txt" 2>&1
    local rc=$?
    tail -n 1 "$dir/console.txt"
    if [[ $rc -ne 0 && $rc -ne 1 ]] || grep -q '^NO RESULT' "$dir/console.txt" \
        || [[ ! -s "$dir/report.json" ]]; then
        echo "autogen conformance: $subject produced no result (exit $rc; log: $dir/console.txt)"
        status=2
    fi
}

run autogen_worker worker "$@" -- "$AG" interop/autogen/conformance_adapter.py
run autogen_host host --legacy "$@" \
    -- "$AG" interop/autogen/host_for_conformance.py --address '{address}'

echo "autogen conformance: reports in $OUT/autogen_worker and $OUT/autogen_host"
# interop/autogen/REPORT.md: the per-requirement verdicts of both runs, per spec section.
if [[ $status -eq 0 && $# -eq 0 ]]; then  # a full run only, not a --case subset
    "$PY" interop/autogen/write_report.py --reports "$OUT" || status=4
fi
exit $status
