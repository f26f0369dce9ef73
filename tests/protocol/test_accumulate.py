"""MessageAccumulator (accumulate.py): one message from a stream's events, by its `Rules`.

`golden/accumulate.json` holds the existing fixtures' streams (the cache
recorder's, the tool loop's, the policy's, the benchmark's, and their broken
variants) with what the two assemblers this module replaced made of them:
`recorder` — `StreamRecorder`'s own (now `STRICT`), fed the whole stream;
`session` — `assemble_answer`'s `_Assembly` in `agent/merge.py` (now
`LENIENT`), an exception recorded by its type. Recorded from commit 44748e1.
"""

from __future__ import annotations

import dataclasses
import gc
from typing import Any

import orjson
import pytest

from lynkr.protocol.accumulate import LENIENT, STRICT, MessageAccumulator, Rules, assemble_answer

from ._golden import cases


def outcome(run: Any) -> Any:
    try:
        return run()
    except Exception as exc:
        return {"raises": type(exc).__name__}


def accumulate(rules: Rules, chunks: list[bytes], *, flush: bool = True) -> Any:
    message = MessageAccumulator(rules)
    for chunk in chunks:
        message.feed(chunk)
    if flush:
        message.flush()
    return message.result()


@pytest.mark.parametrize("size", [0, 1, 7, 64])
@pytest.mark.parametrize("case", cases("accumulate.json"))
def test_strict_rules_assemble_what_the_cache_recorder_did(case: dict[str, Any], size: int) -> None:
    """0: the whole stream in one chunk. Not flushed, as the recorder never was."""
    stream = case["input"].encode()
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)] if size else [stream]
    result = outcome(lambda: accumulate(STRICT, chunks, flush=False))
    assert result == case["expected"]["recorder"]


@pytest.mark.parametrize("case", cases("accumulate.json"))
def test_lenient_rules_assemble_what_sessions_did(case: dict[str, Any]) -> None:
    stream = case["input"].encode()
    expected = case["expected"]["session"]
    assert outcome(lambda: assemble_answer(stream, "text/event-stream")) == expected
    assert outcome(lambda: accumulate(LENIENT, [stream])) == expected


def test_an_errored_or_unfinished_stream_is_not_an_answer() -> None:
    start = b'event: message_start\ndata: {"type":"message_start","message":{"usage":{}}}\n\n'
    error = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"x"}}\n\n'
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    assert assemble_answer(start + error, "text/event-stream") is None
    assert assemble_answer(start, "text/event-stream") is None
    assert assemble_answer(start + stop, "text/event-stream") is not None


def test_a_json_answer_is_read_as_it_is() -> None:
    message = {"type": "message", "content": [{"type": "text", "text": "hi"}]}
    assert assemble_answer(orjson.dumps(message), "application/json") == message
    assert assemble_answer(b"[1]", "application/json") is None
    assert assemble_answer(b"{nope", "application/json; charset=utf-8") is None


# Each rule, both ways ----------------------------------------------------------------------


def frame(data: dict[str, Any], name: str | None = None) -> bytes:
    head = b"" if name == "" else b"event: " + (name or data["type"]).encode() + b"\n"
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def start(index: int, block: dict[str, Any]) -> bytes:
    return frame({"type": "content_block_start", "index": index, "content_block": block})


def delta(index: int, **fields: Any) -> bytes:
    return frame({"type": "content_block_delta", "index": index, "delta": fields})


def stop(index: int) -> bytes:
    return frame({"type": "content_block_stop", "index": index})


MESSAGE = {"id": "m", "type": "message", "role": "assistant", "content": [], "usage": {"a": 1}}
HEAD = frame({"type": "message_start", "message": MESSAGE})
TAIL = frame({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"b": 2}})
END = frame({"type": "message_stop"})
TEXT = {"type": "text", "text": ""}
A, B, C = ({"type": "text", "text": letter} for letter in "abc")
SERVER_CALL = {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}
TOOL_CALL = {"type": "tool_use", "id": "t", "name": "Bash", "input": {}}


def call(block: dict[str, Any], fragment: str) -> list[bytes]:
    """A tool call at index 0 whose input comes in one fragment."""
    return [start(0, block), delta(0, type="input_json_delta", partial_json=fragment), stop(0)]


def text_answer(*middle: bytes) -> list[bytes]:
    return [HEAD, start(0, TEXT), delta(0, type="text_delta", text="hi"), *middle, stop(0)]


def content(result: Any) -> Any:
    return result["content"] if isinstance(result, dict) else result


RULES = [
    # field, value, stream, what STRICT makes of it, what the other value makes of it
    pytest.param(
        "names",
        "event",
        [*text_answer(frame({"type": "content_block_stop", "index": 0}, "ping")), TAIL, END],
        None,  # the name and the type differ
        [{"type": "text", "text": "hi"}],  # a ping
        id="names: a frame named unlike its type",
    ),
    pytest.param(
        "names",
        "event",
        [*text_answer(), TAIL, frame({"type": "message_stop"}, "")],
        [{"type": "text", "text": "hi"}],  # its type says message_stop
        None,  # no name: skipped, so the message never stopped
        id="names: a frame without an event name",
    ),
    pytest.param(
        "framed",
        False,
        [*text_answer(), TAIL, END, delta(0, type="text_delta", text="!")],
        None,
        [{"type": "text", "text": "hi!"}],
        id="framed: a delta after message_stop",
    ),
    pytest.param(
        "order",
        "stop",
        [HEAD, start(0, A), start(1, B), stop(1), stop(0), start(2, C), TAIL, END],
        [A, B, C],
        [B, A],  # block 2 never stopped
        id="order: index vs order of stopping",
    ),
    pytest.param(
        "unknown_delta",
        "ignore",
        [*text_answer(delta(0, type="mystery_delta", text="x")), TAIL, END],
        None,
        [{"type": "text", "text": "hi"}],
        id="unknown_delta",
    ),
    pytest.param(
        "citations",
        False,
        [*text_answer(delta(0, type="citations_delta", citation={"n": 1})), TAIL, END],
        [{"type": "text", "text": "hi", "citations": [{"n": 1}]}],
        None,  # then an unknown delta, which STRICT fails on
        id="citations",
    ),
    pytest.param(
        "tool_input",
        "tool_use",
        [HEAD, *call(SERVER_CALL, '{"q":1}'), TAIL, END],
        [{**SERVER_CALL, "input": {"q": 1}}],
        [SERVER_CALL],  # only a tool_use takes its fragments
        id="tool_input: a server tool call",
    ),
    pytest.param(
        "bad_input",
        "keep",
        [HEAD, *call(TOOL_CALL, '{"q":'), TAIL, END],
        None,
        [{**TOOL_CALL, "input": {"__unparsedToolInput": {"raw": '{"q":', "len": 5}}}],
        id="bad_input",
    ),
    pytest.param(
        "fields",
        "defaults",
        [*text_answer(delta(0, type="text_delta")), TAIL, END],
        None,
        [{"type": "text", "text": "hi"}],  # the text is ""
        id="fields: a delta without its text",
    ),
    pytest.param(
        "fields",
        "defaults",
        [*text_answer(delta(5, type="text_delta", text="?")), TAIL, END],
        None,
        [{"type": "text", "text": "hi"}],
        id="fields: a delta of a block never started",
    ),
]


@pytest.mark.parametrize(("field", "value", "stream", "strict", "other"), RULES)
def test_each_rule_both_ways(
    field: str, value: Any, stream: list[bytes], strict: Any, other: Any
) -> None:
    assert content(accumulate(STRICT, stream)) == strict
    assert content(accumulate(dataclasses.replace(STRICT, **{field: value}), stream)) == other
    # Each chunk alone, too: what the scanner reads by its bytes obeys the same rules.
    one_by_one = [bytes([byte]) for byte in b"".join(stream)]
    assert content(accumulate(STRICT, one_by_one)) == strict


def test_keep_the_message_or_the_step() -> None:
    stream = [*text_answer(), TAIL, END]
    usage = {"a": 1, "b": 2}
    assert accumulate(STRICT, stream) == {
        **MESSAGE,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    step = dataclasses.replace(STRICT, keep="step")
    assert accumulate(step, stream) == {
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": usage,
    }


def test_an_error_event_spoils_the_answer_under_both_rules() -> None:
    error = frame({"type": "error", "error": {"type": "overloaded_error"}})
    for rules in (STRICT, LENIENT):
        assert accumulate(rules, [*text_answer(), TAIL, END, error]) is None
        assert (
            accumulate(rules, [*text_answer(), TAIL, END, b"event: ping\ndata: {nope\n\n"]) is None
        )


def test_decoded_events_are_applied_alike() -> None:
    """`apply` (the tool loop's events, already parsed) is `feed` without the bytes."""
    message = MessageAccumulator(LENIENT)
    for raw in [*text_answer(delta(0, type="text_delta", text=" there")), TAIL]:
        data = orjson.loads(raw.split(b"data: ", 1)[1])
        message.apply(data["type"], data)
    assert message.content() == [{"type": "text", "text": "hi there"}]
    assert (message.stop_reason, message.usage) == ("end_turn", {"a": 1, "b": 2})


def test_a_long_text_is_joined_once() -> None:
    """Thousands of deltas read by their bytes: the pieces join into the very text."""
    pieces = [f'{i} \\ "é🎉\n' for i in range(5000)]
    stream = [HEAD, start(0, TEXT), *(delta(0, type="text_delta", text=p) for p in pieces)]
    stream += [stop(0), TAIL, END]
    for rules in (STRICT, LENIENT):
        assert content(accumulate(rules, stream)) == [{"type": "text", "text": "".join(pieces)}]


def test_an_answer_is_freed_without_the_cyclic_collector() -> None:
    """The reader and what it assembles make no reference cycle: an answer (up to the
    cache's limit, for a recording) goes when its request does, not at the next gc run."""
    gc.collect()
    gc.disable()
    try:
        for rules in (STRICT, LENIENT):
            message = MessageAccumulator(rules)
            for chunk in [*text_answer(), TAIL, END]:
                message.feed(chunk)
            assert message.result() is not None
            del message
        assert gc.collect() == 0
    finally:
        gc.enable()
