"""SSE and NDJSON decoding (sse.py): golden cases, and one result however the bytes are split."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from lynkr.errors import UpstreamError
from lynkr.protocol import NDJSONDecoder, SSEDecoder, SSEEvent, encode_event

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
