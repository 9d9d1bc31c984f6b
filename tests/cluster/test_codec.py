"""The encoding of messages between nodes (reference_host/cluster/_codec.py), without NATS."""

from __future__ import annotations

import pytest

from reference_host.cluster import _codec


def _decode(data: bytes) -> tuple[str, int, int, list[tuple[list[str], bytes]]]:
    sender, seq, ack, entries = _codec.unpack(data)
    return sender, seq, ack, list(entries)


def test_a_message_round_trips_with_its_number_and_acknowledgement() -> None:
    entries = [
        ([b"w1"], b"\x0aevent"),
        ([b"w1", b"w2", b"w3"], b"\x0ashared"),
        ([b"w2"], b"\x12resp"),
    ]
    sender, seq, ack, decoded = _decode(_codec.pack(b"n1-abc", 300, 299, entries))
    assert (sender, seq, ack) == ("n1-abc", 300, 299)
    assert decoded == [
        (["w1"], b"\x0aevent"),
        (["w1", "w2", "w3"], b"\x0ashared"),
        (["w2"], b"\x12resp"),
    ]


def test_a_burst_for_one_client_names_it_once_and_decodes_to_one_list() -> None:
    client = b"a-rather-long-client-id-of-a-worker"
    burst = [([client], bytes([0x1A, i])) for i in range(50)]
    once = _codec.pack(b"n1", 1, 0, burst[:1])
    packed = _codec.pack(b"n1", 1, 0, burst)
    # Every entry after the first takes its header and frame only.
    assert len(packed) - len(once) == 49 * (6 + 2)
    decoded = _decode(packed)[3]
    assert [frame for _, frame in decoded] == [frame for _, frame in burst]
    assert all(clients == [client.decode()] for clients, _ in decoded)
    # The same list object: a reader keeps what it looked up for the client.
    assert len({id(clients) for clients, _ in decoded}) == 1


def test_an_entry_for_several_clients_is_not_repeated_by_the_next() -> None:
    entries = [([b"a", b"b"], b"\x0a1"), ([b"a"], b"\x0a2"), ([b"a"], b"\x0a3")]
    decoded = _decode(_codec.pack(b"n", 2, 1, entries))[3]
    assert decoded == [(["a", "b"], b"\x0a1"), (["a"], b"\x0a2"), (["a"], b"\x0a3")]


def test_a_first_entry_that_repeats_no_client_is_an_error() -> None:
    header = _codec.pack(b"n", 1, 0, [])
    repeated = header + (1).to_bytes(4, "big") + (0).to_bytes(2, "big") + b"\x0a"
    with pytest.raises(ValueError, match="names no client"):
        _decode(repeated)


@pytest.mark.parametrize("cut", [1, 5, 9, 12])
def test_a_truncated_message_is_an_error(cut: int) -> None:
    packed = _codec.pack(b"node", 7, 3, [([b"client"], b"\x0a" * 20)])
    with pytest.raises(ValueError, match="truncated"):
        _decode(packed[: len(packed) - cut])


def test_a_call_entry_carries_its_routing_header_beside_the_frame() -> None:
    entry = _codec.call(b"\x1a\x05frame", "n1-77", 2_500)
    assert _codec.parse_call(entry) == ("n1-77", 2_500, b"\x1a\x05frame")
    with pytest.raises(ValueError, match="truncated"):
        _codec.parse_call(entry[:5])
