"""Raw wire helpers."""

from __future__ import annotations

from agentworker.v1 import agentworker_pb2 as pb
from conformance._wire import all_capabilities, describe, method_path, unknown_case_frame


def test_unknown_case_frame_decodes_with_no_known_case() -> None:
    for number in (15, 99, 5000):
        frame = pb.OpenChannelRequest.FromString(unknown_case_frame(number))
        assert frame.WhichOneof("message") is None
        assert frame.SerializeToString() == unknown_case_frame(number)  # kept as unknown field


def test_method_paths() -> None:
    assert method_path("OpenChannel", legacy=False) == "/agentworker.v1.AgentRpcService/OpenChannel"
    assert method_path("OpenChannel", legacy=True) == "/agents.AgentRpc/OpenChannel"


def test_describe_is_one_bounded_line() -> None:
    text = describe(pb.RpcRequest(request_id="x" * 1000), limit=100)
    assert len(text) == 100
    assert "\n" not in text
    assert describe(b"\x01") == "<raw bytes 01>"


def test_all_capabilities_excludes_unspecified() -> None:
    caps = all_capabilities()
    assert pb.CAPABILITY_UNSPECIFIED not in caps
    assert pb.CAPABILITY_BATCHING in caps
