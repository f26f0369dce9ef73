"""OpenAI → Anthropic response mapping (openai_response.py, docs/protocol.md B.4, cases 22–28)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from lynkr.errors import UpstreamError
from lynkr.protocol.openai_response import to_anthropic_message

from ._golden import cases
from ._openai import normalise


@pytest.mark.parametrize("case", cases("openai/response.json"))
def test_golden(case: dict[str, Any]) -> None:
    message = to_anthropic_message(case["upstream"], **case["options"])
    assert normalise(message) == case["expected"]


def test_generated_ids_have_the_documented_shape() -> None:
    call = {"type": "function", "function": {"name": "A", "arguments": "{}"}}
    upstream = {"choices": [{"message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    message = to_anthropic_message(upstream, model="m")
    assert re.fullmatch(r"toolu_[A-Za-z0-9]{20,}", message["content"][0]["id"])
    assert re.fullmatch(r"msg_[A-Za-z0-9]{20,}", message["id"])
    again = to_anthropic_message(upstream, model="m")
    assert again["content"][0]["id"] != message["content"][0]["id"]


def test_invalid_arguments_log_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "Bash", "arguments": "{oops"}}
    upstream = {"choices": [{"message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    with caplog.at_level(logging.WARNING, logger="lynkr.protocol.openai_response"):
        message = to_anthropic_message(upstream, model="m")
    assert message["content"][0]["input"] == {}
    assert "{oops" in caplog.text


@pytest.mark.parametrize(
    "upstream",
    [
        {"error": {"message": "Provider returned error", "code": 502}},
        {"choices": [{"message": {"content": "par"}, "finish_reason": "error"}]},
    ],
)
def test_an_error_answered_with_200_raises(upstream: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError):
        to_anthropic_message(upstream, model="m")


def test_no_choices_is_an_empty_answer() -> None:
    message = to_anthropic_message({"id": "x", "choices": []}, model="m")
    assert (message["content"], message["stop_reason"]) == ([], "end_turn")
