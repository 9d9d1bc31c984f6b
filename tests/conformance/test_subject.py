"""The spawned host subject: a failed case leaves a fresh host behind, a passed one does not."""

from __future__ import annotations

import asyncio

import pytest

from conformance import SpawnedSubject
from tests.conformance.conftest import tiny_host_command


@pytest.mark.asyncio
async def test_spawned_host_is_restarted_after_a_failed_case_only() -> None:
    subject = SpawnedSubject(tiny_host_command(), scale=2.0)
    await asyncio.wait_for(subject.start(), 60)
    try:
        assert subject.starts == 1
        assert await asyncio.wait_for(subject.after_case(False), 60) is None
        assert subject.starts == 1
        # Alive after a failure: restarted, and no crash is reported.
        assert await asyncio.wait_for(subject.after_case(True), 60) is None
        assert subject.starts == 2
    finally:
        await asyncio.wait_for(subject.stop(), 60)
