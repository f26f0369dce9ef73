"""Several steps merged into one client message: one start, renumbered blocks, no internal calls."""

from __future__ import annotations

from typing import Any

from lynkr.agent.merge import StepMerger


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


def test_an_errored_or_unfinished_stream_is_not_an_answer() -> None:
    from lynkr.agent.merge import assemble_answer

    start = b'event: message_start\ndata: {"type":"message_start","message":{"usage":{}}}\n\n'
    error = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"x"}}\n\n'
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    assert assemble_answer(start + error, "text/event-stream") is None
    assert assemble_answer(start, "text/event-stream") is None
    assert assemble_answer(start + stop, "text/event-stream") is not None
