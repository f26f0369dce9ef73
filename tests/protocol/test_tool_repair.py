"""Repair of tool calls written as text (tool_repair.py; OpenAI-upstreams issue, optional)."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.protocol.tool_repair import repair_text_tool_calls

from ._golden import cases
from ._openai import normalise


def message(content: list[Any]) -> dict[str, Any]:
    usage = {"input_tokens": 3, "output_tokens": 4}
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


@pytest.mark.parametrize("case", cases("openai/tool_repair.json"))
def test_golden(case: dict[str, Any]) -> None:
    given = message(case["input"]["content"])
    repaired = repair_text_tool_calls(given, case["tools"])
    if case["expected"] is None:
        assert repaired is given
        return
    assert normalise(repaired) == {**given, "content": case["expected"], "stop_reason": "tool_use"}
    assert given["content"] == case["input"]["content"]  # the input message is not modified


def test_each_call_gets_its_own_id() -> None:
    text = '[{"name": "A", "arguments": {}}, {"name": "A", "arguments": {}}]'
    repaired = repair_text_tool_calls(message([{"type": "text", "text": text}]), ["A"])
    first, second = repaired["content"]
    assert first["id"] != second["id"]


def test_messages_with_real_tool_calls_are_left_alone() -> None:
    given = message(
        [
            {"type": "text", "text": '{"name": "A", "arguments": {}}'},
            {"type": "tool_use", "id": "toolu_1", "name": "A", "input": {}},
        ]
    )
    assert repair_text_tool_calls(given, ["A"]) is given


def test_a_long_text_of_brackets_stays_fast() -> None:
    text = "[" * 20_000 + "{" * 20_000 + '[{"x": ' * 300 + '{"name": "A", "arguments": {}}'
    repaired = repair_text_tool_calls(message([{"type": "text", "text": text}]), ["A"])
    assert repaired["content"][-1]["name"] == "A"
