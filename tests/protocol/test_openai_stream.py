"""OpenAI SSE → Anthropic SSE translation (openai_stream.py, docs/protocol.md B.5, cases 29–39)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lynkr.protocol.openai_stream import (
    DELTA_END,
    OpenAIStreamTranslator,
    delta_head,
    frame,
    stop_frame,
)

from ._golden import cases, load
from ._openai import events, normalise, translate


@pytest.mark.parametrize("case", cases("openai/stream.json"))
def test_golden(case: dict[str, Any]) -> None:
    out, translator = translate([case["upstream"].encode()], **case["options"])
    expected = case["expected"]
    assert normalise(events(out)) == expected["events"]
    assert (translator.completed, translator.errored) == (
        expected["completed"],
        expected["errored"],
    )


@pytest.mark.parametrize("case", cases("openai/stream.json"))
def test_blocks_are_sequential(case: dict[str, Any]) -> None:
    """A.7 #6 / case 31: start i, deltas i, stop i, then start i+1; indexes count from 0."""
    out, _ = translate([case["upstream"].encode()], **case["options"])
    open_index, next_index = None, 0
    for payload in events(out):
        kind = payload["type"]
        if kind == "content_block_start":
            assert open_index is None and payload["index"] == next_index
            open_index, next_index = next_index, next_index + 1
        elif kind in ("content_block_delta", "content_block_stop"):
            assert payload["index"] == open_index
            if kind == "content_block_stop":
                open_index = None
        elif kind in ("message_delta", "error"):
            assert open_index is None or kind == "error"


def test_noise_split_at_every_offset() -> None:
    """Case 38 with the upstream bytes cut anywhere, even inside a `\\r\\n`."""
    case = next(c for c in load("openai/stream.json") if c["case"] == 38)
    stream = case["upstream"].encode()
    whole, _ = translate([stream], **case["options"])
    for offset in range(len(stream) + 1):
        again, _ = translate([stream[:offset], stream[offset:]], **case["options"])
        assert again == whole, offset


def test_keep_alive_before_the_first_token() -> None:
    """Case 39: `start()` sends message_start and a ping at once; `ping()` frames sent before
    the first token stay in order, and the stream still ends in message_stop."""
    translator = OpenAIStreamTranslator(model="claude-x", message_id="msg_test")
    head = translator.start()
    assert [p["type"] for p in events(head)] == ["message_start", "ping"]
    silence = translator.ping() + translator.ping()
    assert [p["type"] for p in events(silence)] == ["ping", "ping"]
    rest = translator.feed({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
    rest += translator.finish(done=True)
    kinds = [p["type"] for p in events(head + silence + rest)]
    assert kinds[:4] == ["message_start", "ping", "ping", "ping"]
    assert kinds[-1] == "message_stop"


def test_start_is_sent_once_even_when_the_adapter_skips_it() -> None:
    translator = OpenAIStreamTranslator(model="m", message_id="msg_1")
    out = translator.feed({"choices": [{"index": 0, "delta": {"content": "a"}}]})
    assert [p["type"] for p in events(out)][:2] == ["message_start", "ping"]
    assert translator.start() == b""


def test_nothing_after_the_end() -> None:
    translator = OpenAIStreamTranslator(model="m")
    translator.start()
    assert translator.finish(done=True)
    assert translator.completed
    chunk = {"choices": [{"index": 0, "delta": {"content": "late"}}]}
    assert translator.feed(chunk) == translator.finish(done=True) == b""
    assert translator.fail("late") == translator.ping() == b""


def test_fail_sends_the_given_error_type() -> None:
    translator = OpenAIStreamTranslator(model="m")
    translator.start()
    translator.feed({"choices": [{"index": 0, "delta": {"content": "a"}}]})
    payloads = events(translator.fail("upstream timed out", "timeout_error"))
    assert payloads == [
        {"type": "error", "error": {"type": "timeout_error", "message": "upstream timed out"}}
    ]
    assert translator.errored and not translator.completed
    assert translator.finish(done=True) == b""


def test_other_choices_are_ignored() -> None:
    out, _ = translate(
        [
            b'data: {"choices":[{"index":1,"delta":{"content":"other"}}]}\n\n'
            b'data: {"choices":[{"index":0,"delta":{"content":"mine"},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n"
        ],
        model="m",
    )
    texts = [p["delta"]["text"] for p in events(out) if p["type"] == "content_block_delta"]
    assert texts == ["mine"]


# --- the per-token frames are written from byte templates: the same bytes as frame() ---------

TRICKY = ["a", "", ' "q" \\ /', "é😀\u2028\u2029", "\x00\x1f\x7f", "line\nbreak\r\n", "</script>"]


@pytest.mark.parametrize("case", cases("openai/stream.json"))
def test_every_frame_is_frame_of_its_payload(case: dict[str, Any]) -> None:
    """Templated or not, each frame is byte for byte `frame()` of the payload it carries."""
    out, _ = translate([case["upstream"].encode()], **case["options"])
    payloads = events(out)
    assert b"".join(frame(payload) for payload in payloads) == out


@pytest.mark.parametrize("index", [0, 1, 9, 10, 123])
@pytest.mark.parametrize("text", TRICKY)
def test_templates(index: int, text: str) -> None:
    for kind, key, delta_type in [
        ("text", "text", "text_delta"),
        ("thinking", "thinking", "thinking_delta"),
        ("tool", "partial_json", "input_json_delta"),
    ]:
        payload = {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": delta_type, key: text},
        }
        templated = delta_head(index, kind) + orjson.dumps(text) + DELTA_END
        assert templated == frame(payload)
    assert stop_frame(index) == frame({"type": "content_block_stop", "index": index})


def chunk(delta: Any, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None}


def test_short_path_and_general_path_agree() -> None:
    """The usual chunk (only `content`, maybe `role`) and its variants with null extras."""
    variants = [
        {"content": "x"},
        {"role": "assistant", "content": "x"},
        {"content": "x", "reasoning": None, "refusal": None, "tool_calls": None},
        {"content": "x", "reasoning_content": ""},
        {"content": "x", "tool_calls": []},
    ]
    outputs = set()
    for variant in variants:
        translator = OpenAIStreamTranslator(model="m", message_id="msg_1")
        out = translator.start() + translator.feed(chunk({"content": "first"}))
        for text in TRICKY:
            out += translator.feed(chunk({**variant, "content": text}))
        out += translator.feed(chunk({}, "stop")) + translator.finish(done=True)
        outputs.add(out)
    [out] = outputs
    texts = [p["delta"]["text"] for p in events(out) if p["type"] == "content_block_delta"]
    assert texts == ["first", *(t for t in TRICKY if t)]


def test_feed_all_is_feed_of_each_until_an_error() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "a"}),
        chunk({"reasoning_content": "t"}),
        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "N"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        {"error": {"message": "boom"}},
        chunk({"content": "never"}),
    ]
    one = OpenAIStreamTranslator(model="m", message_id="msg_1")
    each = one.start() + b"".join(one.feed(c) for c in chunks)
    other = OpenAIStreamTranslator(model="m", message_id="msg_1")
    assert other.start() + other.feed_all(chunks) == each
    assert other.errored and events(each)[-1]["error"]["message"] == "boom"
    assert other.feed_all(chunks) == b""


@pytest.mark.parametrize(("after", "opens_at_once"), [(" \n", True), ("\u3000", False)])
def test_a_call_is_complete_when_its_arguments_parse(after: str, opens_at_once: bool) -> None:
    """B.5 #5: the next call opens once the live one's arguments are whole JSON; trailing
    JSON whitespace keeps them whole, other whitespace (U+3000) does not."""
    translator = OpenAIStreamTranslator(model="m", message_id="msg_1")
    translator.start()
    first = {"index": 0, "id": "a", "function": {"name": "A", "arguments": '{"x":1}'}}
    translator.feed(chunk({"tool_calls": [first]}))
    translator.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": after}}]}))
    second = {"index": 1, "id": "b", "function": {"name": "B", "arguments": "{}"}}
    out = translator.feed(chunk({"tool_calls": [second]}))
    assert ("content_block_start" in [p["type"] for p in events(out)]) is opens_at_once
    out += translator.feed(chunk({}, "tool_calls")) + translator.finish(done=True)
    starts = [p["content_block"]["id"] for p in events(out) if p["type"] == "content_block_start"]
    assert starts == ["b"]
