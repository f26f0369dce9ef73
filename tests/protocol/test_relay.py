"""The Anthropic-format stream relay (relay.py, docs/protocol.md B.9 and A.9)."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.protocol import AnthropicStreamRelay

from ._golden import cases, load


def relay(model: str | None, chunks: list[bytes]) -> tuple[bytes, AnthropicStreamRelay]:
    state = AnthropicStreamRelay(model)
    out = b"".join(state.feed(chunk) for chunk in chunks) + state.finish()
    return out, state


@pytest.mark.parametrize("case", cases("relay.json"))
def test_golden(case: dict[str, Any]) -> None:
    chunks = [chunk.encode() for chunk in case["input"]]
    out, state = relay(case["options"]["model"], chunks)
    expected = case["expected"]
    assert out.decode() == expected["output"]
    assert (state.completed, state.errored) == (expected["completed"], expected["errored"])


@pytest.mark.parametrize("case", cases("relay.json"))
def test_split_at_every_offset(case: dict[str, Any]) -> None:
    stream = "".join(case["input"]).encode()
    model = case["options"]["model"]
    out, state = relay(model, [stream])
    for offset in range(len(stream) + 1):
        again, other = relay(model, [stream[:offset], stream[offset:]])
        assert again == out, offset
        assert (other.completed, other.errored) == (state.completed, state.errored), offset


def test_holds_only_until_the_first_event() -> None:
    stream = load("case48.json")["input"]["stream"].encode()
    first_end = stream.index(b"\n\n") + 2
    state = AnthropicStreamRelay("claude-opus-4-8")
    assert state.feed(stream[: first_end - 1]) == b""
    head = state.feed(stream[first_end - 1 : first_end + 5])
    assert b'"model":"claude-opus-4-8"' in head
    assert head.endswith(b"\n\n")  # the next frame's first bytes wait for its end
    rest = stream[first_end + 5 :]
    assert state.feed(rest) == stream[first_end:]  # whole frames, bytes unchanged
    whole = stream[first_end:]
    assert state.feed(whole) is whole  # whole frames are forwarded as received, not copied
    assert state.finish() == b""
    assert state.completed


def test_a_cut_stream_never_leaves_half_a_frame() -> None:
    """An error frame sent after a cut must start on a frame boundary (never glued on)."""
    stream = load("case48.json")["input"]["stream"].encode()
    state = AnthropicStreamRelay(None)
    cut = stream.index(b"content_block_delta") + 30
    sent = state.feed(stream[:cut]) + state.finish()
    assert sent.endswith(b"\n\n")
    assert stream.startswith(sent)
    assert not state.completed


def test_message_stop_split_at_every_offset() -> None:
    stop = b"event: message_stop\r\ndata: {}\r\n\r\n"
    head = b"event: message_start\r\ndata: {}\r\n\r\nevent: ping\r\ndata: {}\r\n\r\n"
    for offset in range(len(head), len(head) + len(stop)):
        stream = head + stop
        _, state = relay("m", [stream[:offset], stream[offset : offset + 3], stream[offset + 3 :]])
        assert state.completed, offset


def test_a_truncated_stop_line_is_not_completion() -> None:
    _, state = relay(None, [b"event: message_start\ndata: {}\n\nevent: message_sto"])
    assert not state.completed
    _, state = relay(None, [b"event: message_start\ndata: {}\n\nevent: message_stop_x\n"])
    assert not state.completed


def test_a_whole_buffered_response_in_one_chunk() -> None:
    case = load("case48.json")
    upstream = case["input"]["stream"].encode()
    client = case["expected"]["stream"].encode()
    out, state = relay("claude-opus-4-8", [upstream * 50])
    assert out == client + upstream * 49  # only the first message_start is rewritten
    assert state.completed
