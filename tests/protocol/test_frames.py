"""FrameScanner (frames.py): the frames SSEDecoder reads, however the bytes are cut."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lynkr.protocol import SSEDecoder
from lynkr.protocol.frames import (
    FrameScanner,
    FrameTooLarge,
    delta_string,
    json_string,
    plain_frame,
)
from lynkr.protocol.sse import delta_frame_prefix

# Streams made of the frames Anthropic sends and of everything else SSE allows ----------


def text_delta(text: str, index: int = 0) -> bytes:
    """A `text_delta` frame in Anthropic's compact JSON, which `follow` reads by prefix."""
    return delta_frame_prefix(index, "text_delta") + orjson.dumps(text) + b"}}\n\n"


NAMES = [b"content_block_delta", b"ping", b"message_stop", b"", b"a:b", b"\xffx", b" spaced"]
DATA = [
    b'{"type":"ping"}',
    b'{"type":"content_block_start","index":1,"content_block":{"type":"tool_use"}}',
    b'{"a":"\\u0074ool_use"}',
    b"not json",
    b"",
    b" leading space",
]
LINES = [  # each ended by \n, \r\n or \r
    b"",
    b": keep-alive",
    b":",
    b"data: x",
    b"data:y",
    b"data",
    b"event: e",
    b"event:e",
    b"id: 3",
    b"retry: 10",
    delta_frame_prefix(0, "text_delta") + b'"unfinished"',
    b"}}",
]
TEXTS = st.text(alphabet=st.sampled_from(["a", " ", '"', "\\", "\n", "}", "é", "🎉", "\r"]))

PIECES = st.one_of(
    st.builds(
        lambda name, data: b"event: " + name + b"\ndata: " + data + b"\n\n",
        st.sampled_from(NAMES),
        st.sampled_from(DATA),
    ),
    st.builds(text_delta, TEXTS, st.sampled_from([0, 0, 1])),
    st.builds(
        lambda text: text_delta(text).replace(b'"}}', b'","k":1}}'), TEXTS
    ),  # more than a string
    st.builds(
        lambda line, end: line + end,
        st.sampled_from(LINES),
        st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]),
    ),
)
# Now and then a frame longer than the 64 KiB that frames are cut by hand to.
HUGE = st.builds(
    lambda size, name: b"event: " + name + b"\ndata: " + b"x" * size + b"\n\n",
    st.integers(60_000, 140_000),
    st.sampled_from([b"big", b"content_block_delta"]),
)
STREAMS = st.lists(st.one_of(PIECES, PIECES, PIECES, PIECES, HUGE), max_size=40).map(b"".join)


class Scanner(FrameScanner):
    """A scanner whose frames go to a test's function (true: stop)."""

    def __init__(self, on_frame: Any, **options: Any) -> None:
        super().__init__(**options)
        self.on_frame = on_frame

    def frame(self, name: str | None, data: bytes, raw: bytes) -> bool:
        return bool(self.on_frame(name, data, raw))


class _Log(list[Any]):
    """What `follow` hands the scanner as its lists: every append goes to one log, tagged."""

    def __init__(self, log: list[tuple[Any, Any]], tag: Any) -> None:
        super().__init__()
        self.log, self.tag = log, tag

    def append(self, item: Any) -> None:
        self.log.append((self.tag, item))


def cut(stream: bytes, offsets: list[int]) -> list[bytes]:
    bounds = [0, *sorted(offsets), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def check_against_the_decoder(chunks: list[bytes], *, follow: bool, needle: bytes | None) -> None:
    """Feed by feed, the scanner's frames, pieces and unread runs are the decoder's events.

    The observer follows each `text_delta` it sees (with `follow`) and keeps
    following until a frame that is not one: a frame the scanner read by its
    bytes must be exactly such a delta of the followed index.
    """
    log: list[tuple[Any, Any]] = []

    def sink(name: str | None, data: bytes, raw: bytes) -> None:
        log.append(("frame", (name, data, raw)))
        if not follow:
            return
        try:
            payload = orjson.loads(data)
            index = payload["index"]
            assert payload["delta"]["type"] == "text_delta" and type(index) is int
        except Exception:
            scanner.follow(None)
        else:
            prefix = delta_frame_prefix(index, "text_delta")
            scanner.follow(prefix, _Log(log, ("piece", index)), _Log(log, "raw"))

    scanner = Scanner(sink)
    scanner.pass_unless(needle)
    decoder = SSEDecoder()
    for chunk in [*chunks, None]:
        expected = decoder.feed(chunk) if chunk is not None else decoder.flush()
        passed = scanner.feed(chunk) if chunk is not None else scanner.flush()
        if passed:
            assert not log and passed == b"".join(event.raw for event in expected)
            assert needle is not None and needle not in passed and b"\\u" not in passed
            continue
        seen: list[Any] = []
        for tag, item in log:
            if tag == "raw":
                seen[-1] = (*seen[-1][:2], item)
            else:
                seen.append((tag, item, None))
        log.clear()
        assert len(seen) == len(expected)
        for (tag, item, raw), event in zip(seen, expected, strict=True):
            if tag == "frame":
                assert item == tuple(event)
                continue
            assert raw == event.raw and event.event == "content_block_delta"
            assert orjson.loads(event.data) == {
                "type": "content_block_delta",
                "index": tag[1],  # the index followed when the piece was read
                "delta": {"type": "text_delta", "text": item},
            }


@settings(max_examples=400, deadline=None)
@given(st.data(), STREAMS, st.booleans(), st.sampled_from([None, b"tool_use"]))
def test_the_scanner_reads_what_the_decoder_reads(
    data: st.DataObject, stream: bytes, follow: bool, needle: bytes | None
) -> None:
    """Any stream — plain frames, compact deltas, comments, `\\r` and `\\r\\n`, several
    `data:` lines, frames past 64 KiB — cut anywhere."""
    offsets = data.draw(st.lists(st.integers(0, len(stream)), max_size=25))
    check_against_the_decoder(cut(stream, offsets), follow=follow, needle=needle)


def test_one_frame_per_chunk_and_one_byte_per_chunk() -> None:
    """The chunkings the random cuts rarely draw: each frame alone, and each byte alone."""
    stream = b"".join(
        [
            b'event: message_start\ndata: {"type":"message_start"}\n\n',
            *(text_delta(f'piece {i} \\ "}}" é') for i in range(5)),
            b": keep-alive\n\n",
            *(text_delta(f"more {i}") for i in range(3)),
            text_delta("other block", index=1),
            b'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n',
        ]
    )
    frames = [frame + b"\n\n" for frame in stream.split(b"\n\n")[:-1]]
    for chunks in (frames, [stream[i : i + 1] for i in range(len(stream))], [stream]):
        for follow, needle in itertools.product((False, True), (None, b"tool_use")):
            check_against_the_decoder(chunks, follow=follow, needle=needle)


def test_a_followed_delta_never_reaches_the_sink() -> None:
    seen: list[bytes] = []
    pieces: list[str] = []
    raws: list[bytes] = []
    scanner = Scanner(lambda name, data, raw: seen.append(raw))
    scanner.follow(delta_frame_prefix(2, "text_delta"), pieces, raws)
    frames = [text_delta("a", 2), text_delta("b", 3), text_delta("c", 2)]
    scanner.feed(frames[0])  # alone in its chunk
    scanner.feed(b"".join(frames[1:]))  # among others
    assert pieces == ["a", "c"] and raws == [frames[0], frames[2]]
    assert seen == [frames[1]]


def test_the_sink_stops_the_scanner() -> None:
    seen: list[bytes] = []
    scanner = Scanner(lambda name, data, raw: seen.append(raw) or name == "stop")
    scanner.feed(b"event: a\ndata: 1\n\nevent: stop\ndata: 2\n\nevent: b\ndata: 3\n\n")
    scanner.feed(b"event: c\ndata: 4\n\n")
    scanner.flush()
    assert seen == [b"event: a\ndata: 1\n\n", b"event: stop\ndata: 2\n\n"]


# The cap on one unfinished frame ----------------------------------------------------------


@pytest.mark.parametrize(
    "line_end",
    [
        pytest.param(b"\n", id="cut by hand"),
        pytest.param(b"\r\n", id="decoder"),
    ],
)
def test_an_unfinished_frame_past_the_cap_raises_after_the_frames_before_it(
    line_end: bytes,
) -> None:
    seen: list[bytes] = []
    scanner = Scanner(lambda name, data, raw: seen.append(data), max_frame=100)
    scanner.feed(b"event: a" + line_end + b"data: 1" + line_end * 2 + b"data: " + b"x" * 50)
    assert seen == [b"1"]
    with pytest.raises(FrameTooLarge, match="without finishing an event"):
        scanner.feed(b"x" * 20 + line_end * 2 + b"data: " + b"y" * 120)
    assert seen == [b"1", b"x" * 70]  # it finished within the cap: it came before the error
    scanner.feed(b"\n\nevent: c\ndata: 3\n\n")  # closed: nothing more is read
    assert seen == [b"1", b"x" * 70]


def test_the_cap_counts_a_frame_the_decoder_holds_past_64_kib() -> None:
    scanner = Scanner(lambda name, data, raw: None, max_frame=200_000)
    scanner.feed(b"event: big\ndata: ")
    with pytest.raises(FrameTooLarge):
        for _ in range(300):
            scanner.feed(b"x" * 1000)


def test_comments_without_end_count_against_the_cap() -> None:
    scanner = Scanner(lambda name, data, raw: None, max_frame=1000)
    with pytest.raises(FrameTooLarge):
        for _ in range(100):
            scanner.feed(b": keep-alive\n\n")


def test_a_run_passed_unread_never_leaves_more_than_the_cap_behind() -> None:
    seen: list[bytes] = []
    scanner = Scanner(lambda name, data, raw: seen.append(data), max_frame=100)
    scanner.pass_unless(b"tool_use")
    assert scanner.feed(b"event: a\ndata: 1\n\n" + b"x" * 50) == b"event: a\ndata: 1\n\n"
    scanner.close()
    scanner = Scanner(lambda name, data, raw: seen.append(data), max_frame=100)
    scanner.pass_unless(b"tool_use")
    with pytest.raises(FrameTooLarge):
        scanner.feed(b"event: a\ndata: 1\n\n" + b"x" * 150)
    assert seen == [b"1"]  # read one by one, so it came before the error


# Reading frames by their bytes (the stream observers' fast path) -------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'event: ping\ndata: {"type":"ping"}', ("ping", b'{"type":"ping"}')),
        (b"event: \ndata: x", (None, b"x")),
        (b"event:ping\ndata: x", None),  # no space: the decoder's rules decide
        (b"event: a\ndata:x", None),
        (b"event: a\ndata: x\ndata: y", None),  # several data lines
        (b": comment\nevent: a\ndata: x", None),
        (b"data: x", None),  # no event line
        (b"event: a", None),
    ],
)
def test_plain_frame_reads_only_one_event_line_and_one_data_line(
    frame: bytes, expected: tuple[str | None, bytes] | None
) -> None:
    assert plain_frame(frame) == expected
    if expected is not None:  # what the full decoder reads from the same bytes
        (event,) = SSEDecoder().feed(frame + b"\n\n")
        assert (event.event, event.data) == expected


def test_delta_string_reads_a_continuing_delta_and_nothing_else() -> None:
    prefix = delta_frame_prefix(3, "text_delta")
    frame = prefix + b'"a \\"b\\" }}"}}'
    assert delta_string(frame, prefix) == 'a "b" }}'
    assert delta_string(frame + b"\n\n", prefix, blank_line=True) == 'a "b" }}'
    assert delta_string(prefix + b'"a","extra":1}}', prefix) is None  # more than a string
    assert delta_string(delta_frame_prefix(4, "text_delta") + b'"a"}}', prefix) is None
    assert json_string(b'"line\nbreak"') is None  # a raw break: not one JSON line
    (event,) = SSEDecoder().feed(frame + b"\n\n")
    assert orjson.loads(event.data)["delta"]["text"] == 'a "b" }}'
