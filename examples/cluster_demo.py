"""The demos on a 3-node host cluster, then the loss of a node.

Run it from the repository root (``make cluster-demo``)::

    python examples/cluster_demo.py

It starts a NATS server and three host nodes (n1, n2, n3) joined over it, then:

1. the greeting demo with worker1 on n1 and worker2 on n2 (the conversation starts from n3);
2. the group chat with the writer on n1, the editor on n2 and the UI on n3;
3. kills n2 with SIGKILL, restarts the editor against n3 (a plain restart of the worker
   process: this worker does not fail over by itself), and runs the group chat again: the
   conversation continues on the nodes that are left.

It exits 0 when every step completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import signal
import sys
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_PATHS = [str(ROOT), str(ROOT / "gen" / "python")]
sys.path[:0] = [path for path in SOURCE_PATHS if path not in sys.path]

from reference_host.cluster.local import LocalCluster  # noqa: E402 - after the path setup
from reference_worker import TopicId, Worker  # noqa: E402

LEASE_MS = 1_500
# Greetings each agent of the greeting demo publishes (examples/greeting_demo.py).
LIMIT = 5
GREETING = ROOT / "examples" / "greeting_demo.py"
CHAT = ROOT / "examples" / "group_chat"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*SOURCE_PATHS, env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def _spawn(*args: str, quiet: bool = False) -> asyncio.subprocess.Process:
    """Start an example process; ``quiet`` keeps its stderr (to report a failed start briefly)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if quiet else None,
        env=_env(),
    )


async def _ready(process: asyncio.subprocess.Process) -> bool:
    assert process.stdout is not None
    return (await process.stdout.readline()).strip() == b"ready"


async def _echo(
    label: str,
    process: asyncio.subprocess.Process,
    on_line: Callable[[str], None] | None = None,
) -> list[str]:
    """Print ``process``'s lines as they come, each also passed to ``on_line``; return them."""
    assert process.stdout is not None
    lines: list[str] = []
    while raw := await process.stdout.readline():
        line = raw.decode().rstrip()
        lines.append(line)
        print(f"  [{label}] {line}", flush=True)
        if on_line is not None:
            on_line(line)
    return lines


async def _greetings(label: str, process: asyncio.subprocess.Process) -> int:
    """Echo a greeting worker's lines until it has published its LIMIT greetings, then stop it
    (it serves until SIGTERM, as in the single-host demo) and echo the rest; return how many
    greetings it published in all, or -1 if it did not exit cleanly."""
    greeting = f"{label}: Hello x "
    seen = 0

    def stop_at_limit(line: str) -> None:
        nonlocal seen
        seen += line.startswith(greeting)
        if seen == LIMIT:
            process.send_signal(signal.SIGTERM)  # the worker drains and exits 0

    lines = await _echo(label, process, stop_at_limit)
    count = sum(line.startswith(greeting) for line in lines)
    return count if await process.wait() == 0 else -1


async def greeting(n1: str, n2: str, n3: str) -> bool:
    """worker1 on n1 and worker2 on n2 greet each other; the first message comes from n3."""
    print(f"== greeting demo: worker1 on n1 ({n1}), worker2 on n2 ({n2})", flush=True)
    workers = [
        await _spawn(str(GREETING), "--role", role, "--host-address", address)
        for role, address in (("worker1", n1), ("worker2", n2))
    ]
    if not all([await _ready(w) for w in workers]):
        return False
    starter = Worker(n3)
    await starter.start()
    from greeting_demo import MyMessage  # type: ignore[import-not-found]  # the demo message

    await starter.publish(MyMessage(content="Hello!"), TopicId("default", "default"))
    await starter.stop(grace=1.0)
    counts = await asyncio.gather(*(_greetings(f"worker{i + 1}", w) for i, w in enumerate(workers)))
    return all(count == LIMIT for count in counts)


async def participant(role: str, address: str, rounds: int) -> asyncio.subprocess.Process:
    """Start a chat participant; retry while the cluster still lists a lost predecessor."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 4 * LEASE_MS / 1000 + 10
    while True:
        process = await _spawn(
            str(CHAT / "agent.py"), "--host-address", address, "--role", role,
            "--rounds", str(rounds), quiet=True,
        )  # fmt: skip
        if await _ready(process):
            return process
        assert process.stderr is not None
        errors = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
        await process.wait()
        reason = errors[-1] if errors else f"exit status {process.returncode}"
        if loop.time() > deadline:
            raise RuntimeError(f"{role} could not register on {address}: {reason}")
        print(f"  [{role}] not registered yet, retrying: {reason}", flush=True)
        await asyncio.sleep(0.5)


async def chat(ui_address: str, rounds: int) -> bool:
    """Run the UI against ``ui_address`` and echo the conversation."""
    ui = await _spawn(str(CHAT / "ui.py"), "--host-address", ui_address, "--timeout", "30")
    transcript = await _echo("ui", ui)
    return await ui.wait() == 0 and bool(transcript) and transcript[-1] == "conversation complete"


async def orchestrate(rounds: int) -> int:
    sys.path.insert(0, str(ROOT / "examples"))
    sys.path.insert(0, str(CHAT))
    cluster = LocalCluster(3, lease_ms=LEASE_MS, name="demo")
    await asyncio.to_thread(cluster.start)
    print(cluster.describe(), flush=True)
    n1, n2, n3 = cluster.addresses
    processes: list[asyncio.subprocess.Process] = []
    ok = False
    try:
        ok = await greeting(n1, n2, n3)
        print(f"== group chat: writer on n1, editor on n2, UI on n3 ({rounds} drafts)", flush=True)
        writer = await participant("writer", n1, rounds)
        editor = await participant("editor", n2, rounds)
        processes += [writer, editor]
        ok = await chat(n3, rounds) and ok
        print("== killing node n2 (SIGKILL): the editor's node", flush=True)
        cluster.nodes[1].stop(signal.SIGKILL)
        editor.terminate()
        await editor.wait()
        print("== restarting the editor against n3; the writer stays on n1", flush=True)
        editor = await participant("editor", n3, rounds)
        processes.append(editor)
        ok = await chat(n1, rounds) and ok
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
        await asyncio.to_thread(cluster.stop)
    print("cluster demo complete" if ok else "cluster demo FAILED", flush=True)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="writer drafts per chat")
    args = parser.parse_args()
    return asyncio.run(asyncio.wait_for(orchestrate(args.rounds), 180))


if __name__ == "__main__":
    sys.exit(main())
