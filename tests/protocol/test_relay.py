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


def test_an_unterminated_line_is_searched_once_not_once_per_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frame cut into n chunks costs O(size): each byte is searched once for a frame end
    (before, every chunk re-scanned and re-copied all the bytes held: a 128 MB line froze
    the event loop for 17 s)."""
    from lynkr.protocol import relay as module

    searched = 0
    original = module._last_blank_line_end

    def counted(data: bytes) -> int:
        nonlocal searched
        searched += len(data)
        return original(data)

    monkeypatch.setattr(module, "_last_blank_line_end", counted)
    relay = AnthropicStreamRelay(None)
    first = b"event: ping\ndata: {}\n\n"
    assert relay.feed(first) == first
    chunk = b"x" * 4096
    pieces = 2000
    out = [relay.feed(b"data: " + chunk if i == 0 else chunk) for i in range(pieces)]
    assert out == [b""] * pieces
    total = 6 + pieces * len(chunk)
    assert searched <= total + pieces * 3  # the chunk, plus the 3 bytes before it
    end = b"\n\n"
    released = relay.feed(end)
    assert released == b"data: " + chunk * pieces + end  # the frame goes out whole, once


def test_an_event_without_end_stops_the_stream_past_the_cap() -> None:
    from lynkr.protocol import FrameTooLarge

    relay = AnthropicStreamRelay(None, max_frame=10_000)
    relay.feed(b"event: ping\ndata: {}\n\n")
    relay.feed(b"data: " + b"y" * 9_000)
    with pytest.raises(FrameTooLarge, match="longer than 10,000 bytes"):
        relay.feed(b"y" * 2_000)
    held = AnthropicStreamRelay("m", max_frame=10_000)  # the first event, held for its model
    with pytest.raises(FrameTooLarge):
        held.feed(b"event: message_start\ndata: " + b"z" * 20_000)


def test_frames_cut_anywhere_come_out_whole_and_unchanged() -> None:
    stream = (
        b"event: message_start\ndata: {}\n\nevent: ping\r\ndata: {}\r\n\r\n"
        b'event: content_block_delta\ndata: {"a": 1}\n\nevent: message_stop\ndata: {}\n\n'
    )
    for size in range(1, 12):
        relay = AnthropicStreamRelay(None)
        pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
        out = [relay.feed(piece) for piece in pieces]
        assert b"".join(out) + relay.finish() == stream
        for sent in out:  # every send ends a frame
            assert not sent or sent.endswith((b"\n\n", b"\r\n\r\n"))
        assert relay.completed
