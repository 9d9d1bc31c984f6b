"""The node-fault options (--node-fault-command, --node-lease-ms): parsing, how a failing
command is reported, and when the node-loss case does not run."""

from __future__ import annotations

import asyncio
import io
import shlex
import sys

import pytest

from conformance._cases import CaseSkip, SkipReason
from conformance._cli import main
from conformance._host_context import HostContext
from conformance._node_fault import NodeFault, NodeFaultError, node_fault
from conformance.host_cases._cluster import node_loss


def _main(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out), out.getvalue()


def _python(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def test_the_command_is_split_and_its_placeholders_substituted() -> None:
    fault = node_fault("fault --do {action} 'at {address}'", 1500)
    assert fault is not None
    assert fault.lease_s == 1.5
    assert fault.command("kill", "127.0.0.1:5") == ["fault", "--do", "kill", "at 127.0.0.1:5"]
    assert node_fault(None, None) is None


@pytest.mark.parametrize(
    ("command", "lease_ms", "message"),
    [
        ("fault {action}", None, "--node-fault-command needs --node-lease-ms"),
        (None, 1500, "--node-lease-ms is given without --node-fault-command"),
        ("  ", 1500, "--node-fault-command is empty"),
        ("fault {action}", 0, "--node-lease-ms must be positive"),
    ],
)
def test_bad_options_are_refused(command: str | None, lease_ms: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        node_fault(command, lease_ms)


def test_the_cli_refuses_a_command_without_a_lease() -> None:
    code, out = _main("host", "--address", "127.0.0.1:1", "--node-fault-command", "f {action}")
    assert code == 2
    assert "--node-fault-command needs --node-lease-ms" in out


def test_a_failing_command_names_itself_its_status_and_output() -> None:
    failing = shlex.split(_python("import sys; print('no such node'); sys.exit(3)"))
    fault = NodeFault((*failing, "{action}"), 1000)
    with pytest.raises(NodeFaultError) as failure:
        asyncio.run(fault.run("kill", "127.0.0.1:7"))
    text = str(failure.value)
    assert "--node-fault-command" in text
    assert "exited with 3" in text
    assert "no such node" in text
    assert "kill" in text


def test_a_command_that_does_not_finish_is_ended_at_its_deadline() -> None:
    fault = NodeFault(tuple(shlex.split(_python("import time; time.sleep(60)"))), 1000)
    with pytest.raises(NodeFaultError, match="did not finish within"):
        asyncio.run(fault.run("start", "127.0.0.1:7", scale=0.02))


def _context(addresses: tuple[str, ...], fault: NodeFault | None) -> HostContext:
    return HostContext(
        address=addresses[0],
        legacy=False,
        scale=1.0,
        host_capabilities=frozenset(),
        addresses=addresses,
        node_fault=fault,
    )


async def _run_node_loss(ctx: HostContext) -> None:
    await node_loss(ctx)


def test_node_loss_is_not_claimed_without_the_command() -> None:
    ctx = _context(("127.0.0.1:1", "127.0.0.1:2"), None)
    with pytest.raises(CaseSkip) as skip:
        asyncio.run(_run_node_loss(ctx))
    assert skip.value.reason is SkipReason.NOT_CLAIMED
    assert "--node-fault-command" in skip.value.detail


def test_node_loss_does_not_apply_to_one_host() -> None:
    ctx = _context(("127.0.0.1:1",), NodeFault(("true",), 1000))
    with pytest.raises(CaseSkip) as skip:
        asyncio.run(_run_node_loss(ctx))
    assert skip.value.reason is SkipReason.NOT_APPLICABLE
