"""Unit tests of the host's building blocks: framing, errors, config, metrics, matching."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import HostConfig, Metrics, TokenPolicy, _errors, _wire, load_tokens
from reference_host._config import TlsConfig
from reference_host._handshake import security_mechanisms, worker_max_message_bytes
from reference_host._metrics_export import HostCollector, QueueGauges
from reference_host._subscriptions import SubscriptionTable
from tests.host._raw import event, prefix_sub, type_sub


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_100_000])
def test_varint_matches_protobuf(size: int) -> None:
    message = pb.Payload(data=b"x" * size)
    assert pb.RpcRequest(payload=message).SerializeToString() == (
        b"\x2a" + _wire.varint(len(message.SerializeToString())) + message.SerializeToString()
    )


@pytest.mark.parametrize("size", [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152])
def test_batch_overhead_is_tag_length_and_frame(size: int) -> None:
    length_bytes = 1
    while size >> (7 * length_bytes):
        length_bytes += 1
    assert _wire.batch_overhead(size) == 1 + length_bytes + size
    encoded = _wire.batch([b"z" * size])
    inner = _wire.batch_overhead(size)
    assert len(encoded) == 1 + len(_wire.varint(inner)) + inner


def test_frames_match_protobuf_encoding() -> None:
    # No attributes: map entries may serialize in any order, which would make bytes differ.
    cloud_event = event("t", "s", data=b"y" * 200)
    cloud_event.ClearField("attributes")
    request = pb.RpcRequest(request_id="1", target=pb.AgentId(type="a", key="b"))
    response = pb.RpcResponse(request_id="1", error="e", error_code=pb.ERROR_CODE_OVERLOADED)
    notice = pb.Notice(code=pb.ERROR_CODE_SHUTTING_DOWN, message="bye")
    cases = [
        (_wire.TAG_CLOUD_EVENT, cloud_event, pb.OpenChannelResponse(cloud_event=cloud_event)),
        (_wire.TAG_REQUEST, request, pb.OpenChannelResponse(request=request)),
        (_wire.TAG_RESPONSE, response, pb.OpenChannelResponse(response=response)),
        (_wire.TAG_NOTICE, notice, pb.OpenChannelResponse(notice=notice)),
    ]
    frames = []
    for tag, inner, expected in cases:
        encoded = _wire.frame(tag, inner.SerializeToString())
        assert encoded == expected.SerializeToString()
        frames.append(encoded)
    batch = _wire.batch(frames)
    expected_batch = pb.OpenChannelResponse(
        batch=pb.OpenChannelResponse.Batch(messages=[case[2] for case in cases])
    )
    assert batch == expected_batch.SerializeToString()
    assert sum(_wire.batch_overhead(len(f)) for f in frames) + 3 == len(batch)


def test_every_error_type_has_a_status_code() -> None:
    for error_type in _errors.HostError.__subclasses__():
        assert error_type in _errors.STATUS_CODES
    assert _errors.status_code(_errors.NotFound("x")) == grpc.StatusCode.NOT_FOUND

    class Narrower(_errors.AlreadyExists):
        pass

    assert _errors.status_code(Narrower("x")) == grpc.StatusCode.ALREADY_EXISTS
    assert _errors.status_code(_errors.HostError("x")) == grpc.StatusCode.UNKNOWN


def test_load_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            [
                {"token": "a", "client_id": "ca"},
                {"token": "b", "client_id": "cb", "agent_types": ["x", "y"]},
            ]
        )
    )
    assert load_tokens(path) == (
        TokenPolicy("a", "ca"),
        TokenPolicy("b", "cb", frozenset({"x", "y"})),
    )
    bad_files: list[object] = [
        {},
        [{"token": "", "client_id": "c"}],
        [{"token": "t"}],
        ["t"],
        [{"token": "t", "client_id": "c", "agent_types": "x"}],
    ]
    for bad in bad_files:
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=str(path)):
            load_tokens(path)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="queue_limit"):
        HostConfig(queue_limit=0)
    with pytest.raises(ValueError, match="default_rpc_timeout_ms"):
        HostConfig(default_rpc_timeout_ms=-1)
    with pytest.raises(ValueError, match="unique"):
        HostConfig(tokens=(TokenPolicy("t", "a"), TokenPolicy("t", "b")))


def test_metrics_snapshot_and_collector() -> None:
    metrics = Metrics()
    metrics.events_received = 3
    metrics.count_rpc_error(pb.ERROR_CODE_DEADLINE_EXCEEDED)
    metrics.count_rpc_error(pb.ERROR_CODE_DEADLINE_EXCEEDED)
    metrics.count_rpc_error(99)
    metrics.count_undelivered("event", 4)
    snapshot = metrics.snapshot()
    assert snapshot["events_received"] == 3
    assert snapshot["rpc_errors.ERROR_CODE_DEADLINE_EXCEEDED"] == 2
    assert snapshot["rpc_errors.ERROR_CODE_99"] == 1
    assert snapshot["frames_undelivered.event"] == 4
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(metrics, lambda: QueueGauges(7, 2, 5, 1)))
    text = generate_latest(registry).decode()
    assert "# TYPE agentworker_host_events_received_total counter" in text
    assert registry.get_sample_value("agentworker_host_events_received_total") == 3
    assert (
        registry.get_sample_value(
            "agentworker_host_rpc_errors_total", {"code": "ERROR_CODE_DEADLINE_EXCEEDED"}
        )
        == 2
    )
    assert registry.get_sample_value("agentworker_host_queue_depth") == 7
    assert registry.get_sample_value("agentworker_host_owed_frames_queued") == 2
    assert registry.get_sample_value("agentworker_host_queue_depth_largest") == 5
    assert registry.get_sample_value("agentworker_host_calls_in_flight") == 1
    assert (
        registry.get_sample_value("agentworker_host_frames_undelivered_total", {"kind": "event"})
        == 4
    )


@pytest.mark.requirement("AWP-SUB-010")
@pytest.mark.requirement("AWP-SUB-013")
def test_subscription_matching_and_cache_invalidation() -> None:
    table = SubscriptionTable()
    table.add("w1", type_sub("1", "news", "reader"))
    table.add("w1", type_sub("2", "news", "reader"))
    table.add("w3", type_sub("5", "news", "reader"))
    table.add("w2", prefix_sub("3", "ne", "prefixed"))
    table.add("w2", prefix_sub("4", "news.", "deep"))

    def types(topic: str) -> dict[str, frozenset[str]]:
        return dict(table.agent_types_for(topic))

    assert types("news") == {"reader": {"w1", "w3"}, "prefixed": {"w2"}}
    assert types("news.x") == {"prefixed": {"w2"}, "deep": {"w2"}}
    assert table.agent_types_for("other") == ()
    table.remove("w1", "1")
    assert types("news") == {"reader": {"w1", "w3"}, "prefixed": {"w2"}}
    table.remove("w1", "2")
    assert types("news") == {"reader": {"w3"}, "prefixed": {"w2"}}
    table.remove("w3", "5")
    assert types("news") == {"prefixed": {"w2"}}
    assert table.remove_owner("w2") == 2
    assert table.agent_types_for("news.x") == ()
    assert len(table) == 0


@pytest.mark.requirement("AWP-BAT-006", "AWP-CONN-029")
def test_worker_frame_limit_defaults_to_four_mib() -> None:
    assert worker_max_message_bytes(pb.ChannelHello()) == 4 * 1024 * 1024
    assert worker_max_message_bytes(pb.ChannelHello(max_message_bytes=1024)) == 4 * 1024 * 1024
    big = pb.ChannelHello(max_message_bytes=64 * 1024 * 1024)
    assert worker_max_message_bytes(big) == 64 * 1024 * 1024


@pytest.mark.requirement("AWP-VER-017")
def test_security_mechanisms_follow_the_configuration() -> None:
    assert security_mechanisms(HostConfig()) == []
    tls = TlsConfig(certificate_chain=b"c", private_key=b"k", client_ca=b"ca")
    tokens = (TokenPolicy(token="t", client_id="c"),)
    assert security_mechanisms(HostConfig(tls=tls, tokens=tokens)) == [
        pb.SECURITY_MECHANISM_TLS,
        pb.SECURITY_MECHANISM_MUTUAL_TLS,
        pb.SECURITY_MECHANISM_BEARER_TOKEN,
    ]


@pytest.mark.parametrize(
    ("request_id", "code", "text"),
    [("r1", pb.ERROR_CODE_DEADLINE_EXCEEDED, "late"), ("x" * 2048, 0, ""), ("", 2, "gone é")],
)
def test_error_response_encoding_matches_protobuf(request_id: str, code: int, text: str) -> None:
    expected = pb.OpenChannelResponse(
        response=pb.RpcResponse(request_id=request_id, error=text, error_code=code)  # type: ignore[arg-type]
    ).SerializeToString()
    assert _wire.error_response(request_id, code, text) == expected
    assert _wire.kind_of(expected) == "response"
