"""Anthropic → OpenAI request translation (openai_request.py, docs/protocol.md B.3, cases 1–21)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lynkr.protocol.openai_request import OpenAIDialect, to_openai_request

from ._golden import cases


@pytest.mark.parametrize("case", cases("openai/request.json"))
def test_golden(case: dict[str, Any]) -> None:
    body = case["input"]
    given = copy.deepcopy(body)
    assert to_openai_request(body, OpenAIDialect(**case["dialect"])) == case["expected"]
    assert body == given  # the client's body is never modified


def test_no_system_message_after_the_first_when_converting() -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 10,
        "system": "S",
        "messages": [
            {"role": "system", "content": "early"},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "late"},
            {"role": "assistant", "content": "ok"},
            {"role": "system", "content": "last"},
        ],
    }
    messages = to_openai_request(body, OpenAIDialect(model="m"))["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"].count("<system-reminder>") == 2
    assert messages[3]["content"] == "<system-reminder>\nlast\n</system-reminder>"


def test_tool_messages_directly_follow_their_assistant() -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "a", "name": "A", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "B", "input": {}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b"}]},
            {"role": "system", "content": "between"},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a"}]},
        ],
    }
    messages = to_openai_request(body, OpenAIDialect(model="m"))["messages"]
    assert [(m["role"], m.get("tool_call_id")) for m in messages] == [
        ("user", None),
        ("assistant", None),
        ("tool", "a"),
        ("tool", "b"),
        ("user", None),
    ]
