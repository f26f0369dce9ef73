"""Server tools on OpenAI-format upstreams (server_tools.py, docs/protocol.md A.8, B.3, case 49)."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.protocol.server_tools import (
    is_server_tool,
    local_server_tool_answer,
    message_as_sse,
    strip_server_tools,
)

from ._golden import cases
from ._openai import assemble, events, normalise


@pytest.mark.parametrize("case", cases("openai/server_tools.json"))
def test_golden(case: dict[str, Any]) -> None:
    answer = local_server_tool_answer(case["input"], **case["options"])
    assert normalise(answer) == case["expected"]
    if answer is not None:  # streamed if requested: a valid stream of the same message
        assert assemble(events(message_as_sse(answer))) == answer


def test_case_49_stream_event_sequence() -> None:
    body = {
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
        "tool_choice": {"type": "tool", "name": "web_search"},
    }
    answer = local_server_tool_answer(body, model="claude-x")
    assert answer is not None
    payloads = events(message_as_sse(answer))
    assert [p["type"] for p in payloads] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert payloads[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_message_as_sse_replays_every_block_kind() -> None:
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": ""},
            {"type": "text", "text": "Running."},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
            {"type": "tool_use", "id": "toolu_2", "name": "TaskList", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 2},
    }
    payloads = events(message_as_sse(message))
    assert payloads[0]["message"]["usage"]["output_tokens"] == 0
    without_empty = [b for b in message["content"] if b != {"type": "text", "text": ""}]
    assert assemble(payloads) == {**message, "content": without_empty}


def test_strip_server_tools() -> None:
    read = {"name": "Read", "input_schema": {"type": "object"}}
    custom = {"type": "custom", "name": "Mine", "input_schema": {"type": "object"}}
    search = {"type": "web_search_20250305", "name": "web_search"}
    assert strip_server_tools([read, search, custom, "junk", {"no": "name"}]) == [read, custom]
    assert strip_server_tools(None) == []
    assert [is_server_tool(t) for t in (read, custom, search)] == [False, False, True]
