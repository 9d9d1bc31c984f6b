"""AutoGen's documented two-worker demo, run unchanged against our reference host."""

from __future__ import annotations

import re

import pytest

from reference_host import Host
from tests.interop._autogen import event_is
from tests.interop.conftest import StartAutoGen

pytestmark = pytest.mark.asyncio

GREETING = re.compile(r"^(worker[12]): Hello x (\d+)$")


@pytest.mark.requirement("AWP-VER-003", "AWP-PUB-010", "AWP-SUB-011")
async def test_two_worker_demo_each_agent_publishes_exactly_five(
    autogen: StartAutoGen, host: Host
) -> None:
    demo = await autogen("two_worker_demo.py", "--count", "5", "--timeout", "30", name="demo")

    assert await demo.wait_exit(within=45.0) == 0, demo.diagnostics()
    done = await demo.wait_for(event_is("done"))
    assert done["ok"] is True, demo.diagnostics()
    assert done["published"] == {"worker1": 5, "worker2": 5}
    # "Hello!" from the runtime plus the other agent's five greetings; never its own.
    assert done["received"] == {"worker1": 6, "worker2": 6}

    greetings = [
        match.groups()
        for line in demo.matching(event_is("text"))
        if (match := GREETING.match(line["text"]))
    ]
    assert sorted(greetings) == sorted(
        (name, str(n)) for name in ("worker1", "worker2") for n in range(1, 6)
    )
    # Two workers each published five greetings and the first "Hello!"; the host delivered
    # each greeting to both workers (the publisher's own included) and "Hello!" likewise.
    assert host.metrics.events_received == 11
    assert host.metrics.events_delivered == 22
    assert host.metrics.events_unroutable == 0
