"""Smoke tests of the bench: encoders, command line, and a tiny run against our host and the relay.

No speed is asserted: the tiny run only checks that the machinery works, that every message sent
was delivered, and that the results have the documented shape.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb
from bench import wire
from bench.run import build_parser, run_bench, write_results
from bench.scenarios import Timing

SUBJECTS = ["relay", "ours", "ours_batched"]
SCENARIOS = ["rpc_c16", "pub_s4"]


def test_encoders_match_generated_serialization() -> None:
    request = pb.OpenChannelRequest.FromString(wire.RequestEncoder("t", "k", 32).frame("r1"))
    assert request.request.request_id == "r1"
    assert request.request.target == pb.AgentId(type="t", key="k")
    assert request.request.payload.data_type == "Ping"
    assert request.SerializeToString() == wire.RequestEncoder("t", "k", 32).frame("r1")

    response = pb.OpenChannelRequest.FromString(wire.ResponseEncoder(32).frame("h7"))
    assert response.response.request_id == "h7"
    assert not response.response.error
    assert response.SerializeToString() == wire.ResponseEncoder(32).frame("h7")

    event_frame = wire.EventEncoder("topic", "src", 32).frame("e1")
    event = pb.OpenChannelRequest.FromString(event_frame)
    assert (event.cloud_event.id, event.cloud_event.type) == ("e1", "topic")
    assert event.cloud_event.spec_version == "1.0"
    assert event.cloud_event.attributes["agmsgkind"] == ce.CloudEvent.CloudEventAttributeValue(
        ce_string="publish"
    )

    frames = [wire.ResponseEncoder(8).frame(f"h{i}") for i in range(3)]
    batch = pb.OpenChannelResponse.FromString(wire.batch(frames))
    assert [m.response.request_id for m in batch.batch.messages] == ["h0", "h1", "h2"]
    assert batch.SerializeToString() == wire.batch(frames)


def test_command_line_defaults_and_subsets() -> None:
    args = build_parser().parse_args([])
    assert args.subjects == [
        "relay",
        "relay_noee",
        "relay_agvenv",
        "autogen",
        "autogen_b",
        "ours",
        "ours_batched",
    ]
    assert args.scenarios == ["rpc_c1", "rpc_c16", "rpc_c64", "pub_s1", "pub_s4"]
    args = build_parser().parse_args(["--quick", "--subjects", "relay,ours"])
    assert args.quick
    assert args.subjects == ["relay", "ours"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--subjects", "nope"])


@pytest.mark.slow
def test_tiny_run_against_relay_and_our_host(tmp_path: Path) -> None:
    timing = Timing(warmup_s=0.1, duration_s=0.3, drain_s=3.0)
    lines: list[str] = []
    result = asyncio.run(
        asyncio.wait_for(run_bench(SUBJECTS, SCENARIOS, 1, timing, "tiny", lines.append), 60)
    )

    checks = result["checks"]
    assert checks["measurements"] == len(SUBJECTS) * len(SCENARIOS)
    assert (checks["failed"], checks["incomplete"], checks["errors"]) == (0, 0, [])
    for measurement in result["measurements"]:
        assert measurement["complete"], measurement
        assert measurement["attempts"] >= 1
        assert measurement["other_util"] >= 0
        assert measurement["window_ops"] > 0
        assert measurement["rate"] > 0
        assert measurement["host_cpu_s"] >= 0
        assert measurement["batching"] == (measurement["subject"] == "ours_batched")
        if measurement["scenario"] == "rpc_c16":
            assert measurement["sent"] == measurement["received"] == measurement["answered"]
            assert measurement["errors"] == measurement["stray"] == 0
            assert measurement["p50_ms"] is not None
            assert measurement["p99_ms"] >= measurement["p50_ms"]
        else:
            assert measurement["published"] > 0
            assert measurement["delivered"] == 4 * measurement["published"]
            assert measurement["per_subscriber"] == [measurement["published"]] * 4

    cells = result["summary"]["cells"]
    assert set(cells) == set(SCENARIOS)
    for scenario in SCENARIOS:
        for subject in SUBJECTS:
            cell = cells[scenario][subject]
            assert cell["runs"] == 1
            assert cell["complete"]
            assert cell["rate_vs_relay"] is not None
            assert cell["rate_vs_autogen"] is None  # AutoGen was not part of this run
    assert result["machine"]["nproc"] >= 1
    assert result["config"]["subjects"] == SUBJECTS

    json_path, md_path = write_results(result, tmp_path, "smoke")
    assert json.loads(json_path.read_text())["checks"]["failed"] == 0
    markdown = md_path.read_text()
    for heading in ("## Throughput", "## Host CPU per delivered message", "## Targets"):
        assert heading in markdown
