"""Recording answers from passing bytes, and replaying them as hits the SDK parses the same."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from fakes.anthropic_upstream import (
    Event,
    Scenario,
    cut_stream,
    message_events,
    stream_error,
    text,
    thinking,
    tool_use,
)

from lynkr.cache import JSONRecorder, StreamRecorder, hit_message, storable
from lynkr.protocol import message_as_sse

LIMIT = 1 << 20
MODEL = "lynkr-test-model"


def citations_answer() -> Scenario:
    """A text block whose citations arrive as a `citations_delta` (B.1)."""
    scenario = text("The sky is blue.")
    assert scenario.message is not None
    citation = {"type": "char_location", "cited_text": "blue", "document_index": 0}
    scenario.message["content"][0]["citations"] = [citation]
    return scenario


def redacted_answer() -> Scenario:
    scenario = thinking()
    assert scenario.message is not None
    scenario.message["content"].insert(0, {"type": "redacted_thinking", "data": "ZW5j"})
    return scenario


SCENARIOS = {
    "text": text("Hello there, from the recorded stream."),
    "tool_use": tool_use("ls -la /tmp && echo done", tool_id="toolu_rec_01"),
    "thinking": thinking("Hmm, let me see.", "Forty-two.", signature="c2ln"),
    "redacted thinking": redacted_answer(),
    "unicode": text("Ünïcödé ✓ — split 🎉 everywhere"),
}


def stream_bytes(scenario: Scenario) -> bytes:
    """The SSE bytes the fake upstream plays for `scenario`, ping frames included."""
    message = dict(scenario.message or {}, model=MODEL)
    return b"".join(event.encode() for event in message_events(message, MODEL))


def expected(scenario: Scenario) -> dict[str, Any]:
    return dict(scenario.message or {}, model=MODEL)


def record(data: bytes, chunk: int) -> StreamRecorder:
    recorder = StreamRecorder(limit=LIMIT)
    for start in range(0, len(data), chunk):
        recorder.feed(data[start : start + chunk])
    return recorder


@pytest.mark.parametrize("chunk", [1, 7, 4096])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_stream_is_assembled_into_its_message(name: str, chunk: int) -> None:
    scenario = SCENARIOS[name]
    assert record(stream_bytes(scenario), chunk).result() == expected(scenario)


def test_citations_deltas_are_collected() -> None:
    scenario = citations_answer()
    message = expected(scenario)
    citations = message["content"][0]["citations"]
    events = [
        e
        for e in message_events(dict(message, content=[{"type": "text", "text": "The sky"}]), MODEL)
    ]
    delta = {"type": "citations_delta", "citation": citations[0]}
    stop = next(i for i, e in enumerate(events) if e.name == "content_block_stop")
    frame = Event(
        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    )
    events.insert(stop, frame)
    result = record(b"".join(e.encode() for e in events), 50).result()
    assert result is not None
    assert result["content"][0]["citations"] == citations


def steps_bytes(scenario: Scenario) -> bytes:
    return b"".join(
        step.encode() for step in scenario.stream_steps(MODEL) if isinstance(step, Event)
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(steps_bytes(cut_stream()), id="cut before message_stop"),
        pytest.param(steps_bytes(stream_error()), id="event error mid-stream"),
        pytest.param(stream_bytes(text())[:-5], id="last frame unfinished"),
        pytest.param(
            stream_bytes(text()).replace(b'"text_delta"', b'"mystery_delta"'), id="unknown delta"
        ),
        pytest.param(
            stream_bytes(tool_use()).replace(b'"partial_json": "{', b'"partial_json": "[', 1),
            id="tool input not JSON",
        ),
        pytest.param(b"event: message_stop\ndata: {}\n\n", id="event name and type differ"),
        pytest.param(b"", id="empty"),
    ],
)
def test_an_incomplete_or_broken_stream_yields_nothing(data: bytes) -> None:
    assert record(data, 13).result() is None


def test_an_error_after_message_stop_still_spoils_it() -> None:
    data = stream_bytes(text()) + b'event: error\ndata: {"type":"error","error":{}}\n\n'
    assert record(data, 64).result() is None


def test_a_stream_over_the_limit_is_dropped() -> None:
    data = stream_bytes(text("x" * 5000))
    recorder = StreamRecorder(limit=1000)
    recorder.feed(data)
    assert recorder.failed and recorder.result() is None


def test_a_frame_that_never_ends_is_given_up() -> None:
    """Nothing past the limit is held: the recorder stops reading, whatever comes after."""
    recorder = StreamRecorder(limit=1000)
    recorder.feed(stream_bytes(text())[:200])
    for _ in range(20):
        recorder.feed(b"x" * 100)
    assert recorder.failed and recorder.result() is None
    recorder.feed(b"\n\n" + stream_bytes(text()))
    assert recorder.result() is None


def test_json_recorder() -> None:
    message = expected(text())
    recorder = JSONRecorder(limit=LIMIT)
    raw = orjson.dumps(message)
    recorder.feed(raw[:10])
    recorder.feed(raw[10:])
    assert recorder.result() == message
    for bad in (b'{"type":"error","error":{}}', b"[1]", b"{nope", b'{"type":"message"}'):
        other = JSONRecorder(limit=LIMIT)
        other.feed(bad)
        assert other.result() is None
    small = JSONRecorder(limit=5)
    small.feed(raw)
    assert small.result() is None


@pytest.mark.parametrize(
    ("stop", "truncated_ok", "stored"),
    [
        ("end_turn", False, True),
        ("tool_use", False, True),
        ("stop_sequence", False, True),
        ("max_tokens", False, False),
        ("max_tokens", True, True),
        ("model_context_window_exceeded", False, False),
        ("model_context_window_exceeded", True, True),
        ("pause_turn", True, False),
        ("refusal", True, False),
        (None, True, False),
    ],
)
def test_storable(stop: str | None, truncated_ok: bool, stored: bool) -> None:
    assert storable({"stop_reason": stop}, truncated_ok=truncated_ok) is stored


def test_a_hit_has_a_fresh_id_and_reports_the_prompt_as_cache_reads() -> None:
    stored = dict(
        expected(text()),
        usage={
            "input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 3,
            "output_tokens": 7,
            "server_tool_use": {"web_search_requests": 1},
        },
    )
    first, second = hit_message(stored), hit_message(stored)
    assert first["id"] != second["id"] != stored["id"]
    assert first["id"].startswith("msg_")
    assert first["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 123,
        "output_tokens": 7,
    }
    assert first["content"] == stored["content"]
    assert stored["usage"]["input_tokens"] == 100  # the stored answer is not changed


def sdk_final_message(sse: bytes) -> anthropic.types.Message:
    """What `client.messages.stream(...).get_final_message()` makes of `sse`."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse)

    http = httpx2.Client(transport=httpx2.MockTransport(answer))
    client = anthropic.Anthropic(api_key="k", base_url="http://cache.test", http_client=http)
    with (
        client,
        client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        return stream.get_final_message()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_sdk_parses_a_replay_like_the_live_stream(name: str) -> None:
    live_bytes = stream_bytes(SCENARIOS[name])
    live = sdk_final_message(live_bytes)
    stored = record(live_bytes, 5).result()
    assert stored is not None
    replayed = sdk_final_message(message_as_sse(hit_message(stored)))
    assert replayed.id != live.id
    same = {"id", "usage"}
    assert replayed.model_dump(exclude=same) == live.model_dump(exclude=same)
    # And the replay records back to the same message: a hit can be stored again.
    again = record(message_as_sse(hit_message(stored)), 11).result()
    assert again is not None and again["content"] == stored["content"]


# Anthropic's own framing: compact JSON, where the recorder reads deltas by their bytes ---------


def compact(scenario: Scenario) -> bytes:
    """`stream_bytes`, with each frame's JSON as compact as Anthropic sends it."""
    message = dict(scenario.message or {}, model=MODEL)
    return b"".join(
        b"event: " + event.name.encode() + b"\ndata: " + orjson.dumps(event.data) + b"\n\n"
        for event in message_events(message, MODEL)
    )


def frames(data: bytes) -> list[bytes]:
    """One chunk per event, as a paced model's stream arrives."""
    return [frame + b"\n\n" for frame in data.split(b"\n\n")[:-1]]


def record_chunks(chunks: list[bytes]) -> dict[str, Any] | None:
    recorder = StreamRecorder(limit=LIMIT)
    for chunk in chunks:
        recorder.feed(chunk)
    return recorder.result()


LONG = "".join(f' word{i} "q" \\ é🎉\n' for i in range(700))
LONG_TEXT = text(LONG)


@pytest.mark.parametrize("chunk", [0, 1, 13, 4096])
@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(LONG_TEXT, id="text"),
        pytest.param(thinking(LONG, LONG[::-1], signature="c2ln"), id="thinking"),
        pytest.param(tool_use(LONG, tool_id="toolu_long"), id="tool_use"),
        pytest.param(redacted_answer(), id="redacted"),
    ],
)
def test_a_long_compact_stream_is_assembled_piece_by_piece(scenario: Scenario, chunk: int) -> None:
    """Thousands of deltas, read by prefix and joined once, give the very message (0: per event)."""
    data = compact(scenario)
    chunks = (
        frames(data) if chunk == 0 else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    )
    assert record_chunks(chunks) == expected(scenario)


def framings(data: bytes) -> dict[str, bytes]:
    """The same events framed in other ways SSE allows, which the decoder reads."""
    split = frames(data)
    middle = len(split) // 2
    return {
        "compact": data,
        "spaced json": stream_bytes(LONG_TEXT),
        "crlf": data.replace(b"\n", b"\r\n"),
        "comment midway": b"".join([*split[:middle], b": keep-alive\n\n", *split[middle:]]),
        "no space after colons": b"".join(
            [*split[:middle], *(f.replace(b": ", b":", 2) for f in split[middle:])]
        ),
        "data on two lines": b"".join(
            [
                *split[:middle],
                split[middle].replace(b',"delta"', b'\ndata: ,"delta"'),
                *split[middle + 1 :],
            ]
        ),
    }


@pytest.mark.parametrize("chunk", [1, 29, 4096])
@pytest.mark.parametrize("framing", list(framings(b"\n\n")))
def test_every_framing_records_the_same_message(framing: str, chunk: int) -> None:
    data = framings(compact(LONG_TEXT))[framing]
    assert record(data, chunk).result() == expected(LONG_TEXT)


def delta_frame(text_: Any, index: int = 0, name: str = "content_block_delta") -> bytes:
    delta = {"type": "content_block_delta", "index": index}
    delta["delta"] = {"type": "text_delta", "text": text_}
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(delta) + b"\n\n"


def with_extra_deltas(*extra: bytes) -> list[bytes]:
    """The frames of a compact text answer with `extra` frames after its second delta."""
    split = frames(compact(text("aaaaaabbbbbbcccccc")))  # deltas of 6 characters
    at = next(i for i, f in enumerate(split) if f.startswith(b"event: content_block_delta")) + 2
    return [*split[:at], *extra, *split[at:]]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(delta_frame("x", name="ping"), id="event name and type differ"),
        pytest.param(delta_frame(5), id="text not a string"),
        pytest.param(delta_frame(None), id="text null"),
        pytest.param(delta_frame("x", index=3), id="block never started"),
        pytest.param(
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"x"\n}}\n\n',
            id="a line that is not data",
        ),
        pytest.param(
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"x"}}}\n\n',
            id="not JSON",
        ),
        pytest.param(
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"mystery_delta","text":"x"}}\n\n',
            id="unknown delta",
        ),
        pytest.param(b'event: error\ndata: {"type":"error","error":{}}\n\n', id="error"),
        pytest.param(
            b'event: content_block_start\ndata: {"type":"content_block_start","index":"x",'
            b'"content_block":{"type":"text","text":""}}\n\n',
            id="index not a number",
        ),
    ],
)
def test_a_bad_frame_among_plain_deltas_spoils_the_stream(extra: bytes) -> None:
    chunks = with_extra_deltas(extra)
    assert record_chunks(chunks) is None
    assert record_chunks([b"".join(chunks)]) is None


def test_a_delta_with_more_keys_is_still_a_delta() -> None:
    """What looks like a plain delta but is not is parsed whole, like any frame."""
    extra = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"x","extra":1}}\n\n'
    )
    result = record_chunks(with_extra_deltas(extra))
    assert result is not None
    assert result["content"][0]["text"] == "aaaaaabbbbbbxcccccc"


def test_a_delta_after_message_stop_spoils_it() -> None:
    # Without its content_block_stop, the block is still the one the next delta would continue.
    chunks = [f for f in frames(compact(text("one two"))) if b"content_block_stop" not in f]
    assert record_chunks(chunks) is not None
    assert record_chunks([*chunks, delta_frame(" more")]) is None
    assert record_chunks([*chunks, b'event: ping\ndata: {"type":"ping"}\n\n']) is not None


def test_a_restarted_block_keeps_only_its_own_text() -> None:
    split = with_extra_deltas(
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":"new:"}}\n\n'
    )
    result = record_chunks(split)
    assert result is not None
    assert result["content"][0]["text"] == "new:cccccc"


def test_a_long_frame_in_many_small_chunks_is_recorded_whole() -> None:
    """Past 64 KiB an unfinished frame goes to the decoder (no copy of the carry per chunk)."""
    text = "x" * 300_000
    frames = [
        {
            "type": "message_start",
            "message": {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "usage": {},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": text},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        {"type": "message_stop"},
    ]
    raw = b"".join(
        b"event: %s\ndata: %s\n\n" % (f["type"].encode(), orjson.dumps(f)) for f in frames
    )
    recorder = StreamRecorder(limit=10 * 1024 * 1024)
    for start in range(0, len(raw), 100):
        recorder.feed(raw[start : start + 100])
    message = recorder.result()
    assert message is not None and message["content"] == [{"type": "text", "text": text}]
