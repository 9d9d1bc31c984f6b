#!/usr/bin/env bash
# Creates interop/autogen/.venv: AutoGen (autogen-core and autogen-ext[grpc] 0.7.5) with the
# exact grpcio and protobuf versions it pins, kept apart from the project's own .venv, plus
# Python code generated from protos/ by that virtualenv's grpcio-tools.
#
#   interop/autogen/setup.sh        # idempotent; a rerun with nothing changed returns at once
#   FORCE=1 interop/autogen/setup.sh  # rebuild from scratch
#
# Needs python3 (3.10 to 3.13; AUTOGEN_PYTHON selects another interpreter) and access to PyPI.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
GEN="$VENV/gen"
STAMP="$VENV/.setup-stamp"
PYTHON="${AUTOGEN_PYTHON:-python3}"
FORCE="${FORCE:-0}"

command -v "$PYTHON" >/dev/null 2>&1 || {
    echo "autogen setup: '$PYTHON' is not on PATH" >&2
    exit 1
}
"$PYTHON" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' || {
    echo "autogen setup: $("$PYTHON" -V 2>&1) found; AutoGen 0.7.5 needs Python 3.10 to 3.13" >&2
    exit 1
}

# Everything the virtualenv is built from: a change to any of these rebuilds it.
digest() {
    {
        "$PYTHON" -c 'import sys; print(sys.version)'
        for f in "$HERE/requirements.txt" "$HERE/setup.sh" "$HERE"/protos/*.proto; do
            printf '%s\n' "${f#"$HERE"/}"
            cat "$f"
        done
    } | sha256sum | cut -d' ' -f1
}

want="$(digest)"
if [[ "$FORCE" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" ]]; then
    exit 0
fi

# One setup at a time (parallel test sessions may call this together).
exec 9>"$HERE/.setup.lock"
flock -w 900 9 || {
    echo "autogen setup: another setup holds the lock for more than 15 minutes" >&2
    exit 1
}
if [[ "$FORCE" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" ]]; then
    exit 0 # built by the setup we waited for
fi

start=$SECONDS
echo "autogen setup: building $VENV"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip check

mkdir -p "$GEN"
"$VENV/bin/python" -m grpc_tools.protoc \
    --proto_path="$HERE/protos" \
    --python_out="$GEN" \
    "$HERE"/protos/*.proto
# Proves the generated code loads under AutoGen's protobuf runtime, next to AutoGen's own stubs.
PYTHONPATH="$GEN" "$VENV/bin/python" -c '
import autogen_core, autogen_ext.runtimes.grpc
import interop_messages_pb2 as m
assert m.Ping.DESCRIPTOR.full_name == "agentworker.conformance.v1.Ping"
'

printf '%s\n' "$want" >"$STAMP"
echo "autogen setup: done in $((SECONDS - start))s"
