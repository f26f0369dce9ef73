"""SSE and NDJSON decoding (sse.py): golden cases, and one result however the bytes are split."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from lynkr.errors import UpstreamError
from lynkr.protocol import NDJSONDecoder, SSEDecoder, SSEEvent, encode_event
from lynkr.protocol.sse import SSEDataDecoder

from ._golden import cases, load


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def split(data: bytes, offsets: list[int]) -> list[bytes]:
    bounds = [0, *sorted(offsets), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def summary(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [{"event": e.event, "data": e.data.decode()} for e in events]


@pytest.mark.parametrize("case", cases("sse.json"))
def test_golden(case: dict[str, Any]) -> None:
    events = decode([chunk.encode() for chunk in case["input"]])
    assert summary(events) == case["expected"]
    # Raw bytes are exact: together they are the stream up to the last event.
    assert "".join(case["input"]).encode().startswith(b"".join(e.raw for e in events))


@pytest.mark.parametrize("case", cases("sse.json"))
def test_split_at_every_offset(case: dict[str, Any]) -> None:
    stream = "".join(case["input"]).encode()
    whole = decode([stream])
    for offset in range(len(stream) + 1):
        assert decode(split(stream, [offset])) == whole, offset


def realistic_stream() -> bytes:
    """Case 48's recorded stream, in all three line-ending styles, with a keep-alive."""
    lf: bytes = load("case48.json")["input"]["stream"].encode()
    return lf + b": keep-alive\r\n\r\n" + lf.replace(b"\n", b"\r\n") + lf.replace(b"\n", b"\r")


def test_random_splits() -> None:
    stream = realistic_stream()
    whole = decode([stream])
    assert len(whole) == 30
    assert b"".join(e.raw for e in whole) == stream
    rng = random.Random(48)
    for _ in range(300):
        offsets = rng.sample(range(len(stream)), rng.randint(1, 40))
        assert decode(split(stream, offsets)) == whole


def test_byte_by_byte() -> None:
    stream = realistic_stream()
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == decode([stream])


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: a\ndata: 1\n") == []
    assert summary(decoder.feed(b"\nevent: b\n")) == [{"event": "a", "data": "1"}]
    assert summary(decoder.feed(b"data: 2\n\n")) == [{"event": "b", "data": "2"}]


def test_flush_settles_a_held_carriage_return() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\r\r") == []  # the last \r may still become \r\n
    assert summary(decoder.flush()) == [{"event": None, "data": "1"}]
    assert decoder.feed(b"data: 2\n\n")[0].raw == b"data: 2\n\n"  # usable again


@pytest.mark.parametrize("data", [b'{"type":"ping"}', b"", b"a\nb", b"a\r\nb\n", b"x\ry"])
def test_encode_event_round_trip(data: bytes) -> None:
    frame = encode_event("ping", data)
    [event] = decode([frame])
    assert (event.event, event.raw) == ("ping", frame)
    assert event.data == data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def test_encode_event_shape() -> None:
    assert encode_event("message_stop", b'{"type":"message_stop"}') == (
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


OLLAMA = (  # golden case 47's upstream lines
    b'{"message":{"role":"assistant","content":"Hi"},"done":false}\n'
    b'{"message":{"role":"assistant","content":"","tool_calls":[{"id":"c1","function":'
    b'{"index":0,"name":"Bash","arguments":{"command":"ls"}}}]},"done":false}\r\n'
    b"\n"
    b'{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop",'
    b'"prompt_eval_count":30,"eval_count":5}\n'
)


def ndjson(chunks: list[bytes]) -> list[Any]:
    decoder = NDJSONDecoder()
    return [item for chunk in chunks for item in decoder.feed(chunk)] + decoder.flush()


def test_ndjson_split_anywhere() -> None:
    whole = ndjson([OLLAMA])
    assert [item["done"] for item in whole] == [False, False, True]
    assert whole[1]["message"]["tool_calls"][0]["function"]["arguments"] == {"command": "ls"}
    for offset in range(len(OLLAMA) + 1):
        assert ndjson(split(OLLAMA, [offset])) == whole, offset


def test_ndjson_last_line_without_newline() -> None:
    assert ndjson([b'{"a":1}\n{"b"', b":2}"]) == [{"a": 1}, {"b": 2}]
    assert ndjson([b"\n \n"]) == []


def test_ndjson_bad_line() -> None:
    with pytest.raises(UpstreamError, match="not JSON: 'oops'"):
        NDJSONDecoder().feed(b"oops\n")


# --- the fast paths: one whole event per chunk, and the data-only decoder ---------------------


def data_only(chunks: list[bytes]) -> list[bytes]:
    decoder = SSEDataDecoder()
    return [data for chunk in chunks for data in decoder.feed(chunk)]


def frames(stream: bytes) -> list[bytes]:
    """`stream` cut after every blank line, as a server sends it event by event."""
    pieces = stream.split(b"\n\n")
    return [piece + b"\n\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


ODD_FRAMES = [
    b"event: a\ndata: 1\n\n",
    b"event:b\ndata:2\n\n",  # no space after the colons
    b"event: c\ndata: 3\ndata: 4\n\n",  # two data lines
    b": keep-alive\n\nevent: d\ndata: 5\n\n",  # a comment block before
    b"event: e\ndata: 6\n\n\n",  # one blank line too many
    b"event: \ndata: 7\n\n",  # an empty name is no name
    b"event: f:g\ndata: 8\n\n",  # a colon in the value
    b"event: \xffh\ndata: 9\n\n",  # not UTF-8
    b"event: i\r\ndata: 10\r\n\r\n",
    b"event: j\ndata: 11\n",  # not finished: it waits for the blank line
    b"\n",
    b"event: k\nid: 3\ndata: 12\n\n",
    b"data: 13\n\n",
    b"data: 14\n\ndata: 15\n\n",
]


def test_one_event_per_chunk_decodes_as_a_whole() -> None:
    """`feed()`'s short path for a chunk that is one whole event gives what parsing gives."""
    whole = decode([b"".join(ODD_FRAMES)])
    assert decode(ODD_FRAMES) == whole
    assert [e.event for e in whole][:4] == ["a", "b", "c", "d"]
    assert b"".join(e.raw for e in whole) == b"".join(ODD_FRAMES)
    stream = realistic_stream()
    assert decode(frames(stream)) == decode([stream])


@pytest.mark.parametrize("case", cases("sse.json"))
def test_data_decoder_golden_split_at_every_offset(case: dict[str, Any]) -> None:
    stream = "".join(case["input"]).encode()
    expected = [event.data for event in decode([stream])]
    assert data_only([chunk.encode() for chunk in case["input"]]) == expected
    for offset in range(len(stream) + 1):
        assert data_only(split(stream, [offset])) == expected, offset


def test_data_decoder_matches_the_decoder() -> None:
    """However the bytes are cut, the data are those SSEDecoder finds (after its flush)."""
    for stream in (
        realistic_stream(),
        b"".join(ODD_FRAMES),
        b"".join(ODD_FRAMES).replace(b"\n", b"\r"),
    ):
        expected = [event.data for event in decode([stream])]
        assert data_only([stream]) == expected
        assert data_only(frames(stream)) == expected
        assert data_only([stream[i : i + 1] for i in range(len(stream))]) == expected
        rng = random.Random(len(stream))
        for _ in range(200):
            offsets = rng.sample(range(len(stream)), rng.randint(1, 30))
            assert data_only(split(stream, offsets)) == expected


def test_data_decoder_does_not_wait_on_a_final_carriage_return() -> None:
    decoder = SSEDataDecoder()
    assert decoder.feed(b"data: 1\r\r") == [b"1"]  # SSEDecoder holds this until flush()
    assert decoder.feed(b"\ndata: 2\r") == []  # that `\n` was the end of a `\r\n`
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n\r\n") == [b"2"]


def test_ndjson_line_by_line() -> None:
    lines = [line + b"\n" for line in OLLAMA.split(b"\n")[:-1]]
    assert ndjson(lines) == ndjson([OLLAMA])
    with pytest.raises(UpstreamError, match=r"not JSON: '\{oops'"):
        NDJSONDecoder().feed(b"{oops\n")
