"""Several steps merged into one client message: one start, renumbered blocks, no internal calls."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lynkr.agent.merge import StepMerger
from lynkr.protocol import SSEDecoder
from lynkr.protocol.accumulate import assemble_answer


def stream(*blocks: dict[str, Any], stop: str, usage: dict[str, int]) -> list[tuple[str, dict]]:
    """The events of one upstream answer made of `blocks` (text or tool_use)."""
    message = {
        "id": "msg_up",
        "model": "claude-x",
        "usage": {"input_tokens": usage["input_tokens"]},
    }
    events: list[tuple[str, dict]] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(blocks):
        start = {"type": "text", "text": ""} if block["type"] == "text" else {**block, "input": {}}
        events.append(("content_block_start", {"index": index, "content_block": start}))
        if block["type"] == "text":
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            delta = {"type": "input_json_delta", "partial_json": '{"a": 1}'}
        events.append(("content_block_delta", {"index": index, "delta": delta}))
        events.append(("content_block_stop", {"index": index}))
    events.append(
        (
            "message_delta",
            {"delta": {"stop_reason": stop}, "usage": {"output_tokens": usage["output_tokens"]}},
        )
    )
    events.append(("message_stop", {}))
    return events


def run_step(merger: StepMerger, events: list[tuple[str, dict]]) -> tuple[Any, list]:
    merger.begin_step()
    out = [e for name, data in events for e in merger.feed(name, data)]
    step = merger.end_step()
    merger.usage.add(step.usage)
    return step, out


def test_two_steps_become_one_message_without_internal_tool_use() -> None:
    merger = StepMerger(internal_tools={"lynkr_git_status"})
    first, out1 = run_step(merger, stream(
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "t1", "name": "lynkr_git_status"},
        stop="tool_use", usage={"input_tokens": 100, "output_tokens": 10}))  # fmt: skip
    note = merger.note("[lynkr ran lynkr_git_status]")
    second, out2 = run_step(merger, stream(
        {"type": "text", "text": "Clean tree."},
        {"type": "tool_use", "id": "t2", "name": "Bash"},
        stop="tool_use", usage={"input_tokens": 150, "output_tokens": 7}))  # fmt: skip
    events = out1 + note + out2 + merger.finish("tool_use")
    names = [name for name, _ in events]
    assert names.count("message_start") == 1
    assert names.count("message_delta") == names.count("message_stop") == 1
    starts = [d for n, d in events if n == "content_block_start"]
    assert [d["index"] for d in starts] == [0, 1, 2, 3]
    assert [d["content_block"].get("name") for d in starts] == [None, None, None, "Bash"]
    assert all(d.get("content_block", {}).get("name") != "lynkr_git_status" for _, d in events)
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"]["input_tokens"] == 250 and final["usage"]["output_tokens"] == 17
    # The loop sees every block of a step, lynkr's own call included, with its input parsed.
    assert merger.internal_calls(first) == [
        {"type": "tool_use", "id": "t1", "name": "lynkr_git_status", "input": {"a": 1}}
    ]
    assert [b["name"] for b in merger.client_calls(second)] == ["Bash"]


def test_whole_messages_for_clients_that_do_not_stream() -> None:
    merger = StepMerger(internal_tools={"lynkr_read_file"})
    message = {
        "content": [
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "t1", "name": "lynkr_read_file", "input": {"path": "a"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    step, visible = merger.feed_message(message)
    assert visible == [{"type": "text", "text": "Reading."}]
    assert merger.internal_calls(step)[0]["input"] == {"path": "a"}
    assert merger.note("x")[0][1]["index"] == 1  # numbering continues after visible blocks


def test_bad_tool_json_is_kept_raw() -> None:
    merger = StepMerger(internal_tools=set())
    merger.begin_step()
    merger.feed("content_block_start", {"index": 0, "content_block": {
        "type": "tool_use", "id": "t", "name": "Bash", "input": {}}})  # fmt: skip
    merger.feed("content_block_delta", {"index": 0, "delta": {
        "type": "input_json_delta", "partial_json": '{"command": "ls'}})  # fmt: skip
    merger.feed("content_block_stop", {"index": 0})
    block = merger.end_step().blocks[0]
    assert block["input"] == {"__unparsedToolInput": {"raw": '{"command": "ls', "len": 15}}


# assemble_answer reads frames by their bytes: the same answer as StepMerger's ----------------


def reference(body: bytes) -> dict[str, Any] | None:
    """What `assemble_answer` makes of an SSE body, by the plain route: decoder + StepMerger."""
    merger = StepMerger(internal_tools=())
    merger.begin_step()
    decoder = SSEDecoder()
    finished = False
    for event in [*decoder.feed(body), *decoder.flush()]:
        if event.event == "error":
            return None
        finished = finished or event.event == "message_stop"
        if event.event and event.data:
            try:
                merger.feed(event.event, orjson.loads(event.data))
            except orjson.JSONDecodeError:
                return None
    if not finished:
        return None
    step = merger.end_step()
    return {"content": step.blocks, "stop_reason": step.stop_reason, "usage": step.usage}


def compact_sse(events: list[tuple[str, dict]]) -> bytes:
    """Frames as Anthropic sends them: compact JSON, whose deltas are read by prefix."""
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"
        for name, data in events
    )


LONG = [f' word{i} "q" \\ é🎉\n' for i in range(800)]


def deltas(index: int, start: dict, kind: str, pieces: list[str]) -> list[tuple[str, dict]]:
    """One block: its start, a delta of `kind` per piece, its stop."""
    field = {"text_delta": "text", "thinking_delta": "thinking"}.get(kind, "partial_json")
    return [
        ("content_block_start", {"index": index, "content_block": start}),
        *(
            ("content_block_delta", {"index": index, "delta": {"type": kind, field: piece}})
            for piece in pieces
        ),
        ("content_block_stop", {"index": index}),
    ]


def long_answer() -> list[tuple[str, dict]]:
    """Text, thinking and a tool call, each in hundreds of deltas."""
    tool_input = orjson.dumps({"command": "".join(LONG)}).decode()
    fragments = [tool_input[i : i + 7] for i in range(0, len(tool_input), 7)]
    tool = {"type": "tool_use", "id": "t", "name": "Bash", "input": {}}
    return [
        ("message_start", {"message": {"id": "m", "usage": {"input_tokens": 5}}}),
        ("ping", {}),
        *deltas(0, {"type": "thinking", "thinking": "", "signature": ""}, "thinking_delta", LONG),
        *deltas(1, {"type": "text", "text": ""}, "text_delta", LONG),
        *deltas(2, tool, "input_json_delta", fragments),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {}),
    ]


def test_a_long_answer_of_many_deltas_assembles_to_the_same_text() -> None:
    body = compact_sse(long_answer())
    answer = assemble_answer(body, "text/event-stream")
    assert answer is not None
    thinking, text, tool = answer["content"]
    assert thinking["thinking"] == text["text"] == "".join(LONG)
    assert tool["input"] == {"command": "".join(LONG)}
    assert answer == reference(body)
    assert answer["usage"] == {"input_tokens": 5, "output_tokens": 9}


DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
TEXT_DELTA = DELTA + b'"delta":{"type":"text_delta","text":'


def mutations(body: bytes) -> dict[str, bytes]:
    """`body`, and bodies with one more frame (or one less) midway, framed in other ways."""
    frames = [frame + b"\n\n" for frame in body.split(b"\n\n")[:-1]]
    texts = [i for i, frame in enumerate(frames) if frame.startswith(TEXT_DELTA)]
    middle = texts[len(texts) // 2]  # amid the text block's deltas, read by prefix

    def at_middle(extra: bytes) -> bytes:
        return b"".join([*frames[:middle], extra, *frames[middle:]])

    restart = b'"content_block":{"type":"text","text":"again:"}}\n\n'
    misnamed = TEXT_DELTA.replace(b"content_block_delta", b"ping", 1)
    unstopped = [f for f in frames if not f.startswith(b"event: content_block_stop")]
    return {
        "compact": body,
        "crlf": body.replace(b"\n", b"\r\n"),
        "spaced": body.replace(b'":', b'": ').replace(b',"', b', "'),
        "comment midway": at_middle(b": keep-alive\n\n"),
        "blank lines midway": at_middle(b"\n\n"),
        "data on two lines": at_middle(TEXT_DELTA + b'"x"\ndata: }}\n\n'),
        "a line that is not data": at_middle(TEXT_DELTA + b'"x"\n}}\n\n'),
        "delta with more keys": at_middle(TEXT_DELTA + b'"x","k":1}}\n\n'),
        "text not a string": at_middle(TEXT_DELTA + b"5}}\n\n"),
        "not JSON": at_middle(TEXT_DELTA + b'"x"}}}\n\n'),
        "named otherwise": at_middle(misnamed + b'"x"}}\n\n'),
        "unknown block": at_middle(TEXT_DELTA.replace(b'"index":1', b'"index":9') + b'"x"}}\n\n'),
        "error": at_middle(b'event: error\ndata: {"type":"error","error":{}}\n\n'),
        "restarted block": at_middle(DELTA.replace(b"delta", b"start") + restart),
        "no stop for a block": b"".join(unstopped),
        "unfinished": body[:-1],
        "cut": body[: len(body) // 2],
    }  # fmt: skip


MUTATIONS = mutations(compact_sse(long_answer()))


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_assemble_answer_agrees_with_step_merger(name: str) -> None:
    body = MUTATIONS[name]
    try:
        expected: Any = reference(body)
    except Exception as exc:
        expected = type(exc)
    try:
        answer: Any = assemble_answer(body, "text/event-stream")
    except Exception as exc:
        answer = type(exc)
    assert answer == expected


def test_a_long_streamed_block_is_assembled_in_order_in_linear_time() -> None:
    """Deltas are kept as pieces and joined at content_block_stop (no string regrown per delta)."""
    merger = StepMerger(internal_tools=())
    merger.begin_step()
    merger.feed(
        "content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}
    )
    for n in range(20_000):
        merger.feed(
            "content_block_delta",
            {"index": 0, "delta": {"type": "thinking_delta", "thinking": f"{n},"}},
        )
    merger.feed(
        "content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "s"}}
    )
    merger.feed("content_block_stop", {"index": 0})
    merger.feed("content_block_start", {"index": 1, "content_block": {"type": "text", "text": "a"}})
    merger.feed("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "b"}})
    merger.feed("content_block_stop", {"index": 1})
    thinking, text = merger.end_step().blocks
    assert thinking == {
        "type": "thinking",
        "thinking": ",".join(map(str, range(20_000))) + ",",
        "signature": "s",
    }
    assert text == {"type": "text", "text": "ab"}
