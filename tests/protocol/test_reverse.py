"""OpenAI clients in front of Anthropic (reverse.py): requests, answers and streams, from golden
files. Expected errors are a substring of the `ClientError` message, which names the JSON path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lynkr.errors import ClientError
from lynkr.protocol.reverse import (
    AnthropicToOpenAIStream,
    anthropic_message_to_openai,
    anthropic_models_to_openai,
    openai_request_to_anthropic,
)

from ._golden import cases

CREATED = 1700000000


@pytest.mark.parametrize("case", cases("reverse/request.json"))
def test_request(case: dict[str, Any]) -> None:
    expected = case["expected"]
    if set(expected) == {"error"}:
        with pytest.raises(ClientError) as caught:
            openai_request_to_anthropic(case["input"], **case["options"])
        assert expected["error"] in caught.value.message
        assert caught.value.status_code == 400
        return
    before = orjson.dumps(case["input"])
    assert openai_request_to_anthropic(case["input"], **case["options"]) == expected
    assert orjson.dumps(case["input"]) == before  # the client's request is left untouched


@pytest.mark.parametrize("case", cases("reverse/response.json"))
def test_response(case: dict[str, Any]) -> None:
    completion = anthropic_message_to_openai(
        case["input"], model=case["options"]["model"], created=CREATED
    )
    assert completion == case["expected"]


@pytest.mark.parametrize("case", cases("reverse/stream.json"))
def test_stream(case: dict[str, Any]) -> None:
    options = case["options"]
    translator = AnthropicToOpenAIStream(
        model=options["model"], include_usage=options["include_usage"], created=CREATED
    )
    out = b"".join(translator.feed(name, data) for name, data in case["input"])
    out += translator.finish()
    frames = out.split(b"\n\n")
    assert frames.pop() == b""
    chunks = [_chunk(frame) for frame in frames]
    assert chunks == case["expected"]
    assert translator.done
    assert translator.finish() == b""


def _chunk(frame: bytes) -> Any:
    """A `data:` line's JSON or `[DONE]`, or a comment line as it stands (`: ping`)."""
    if frame.startswith(b":"):
        return frame.decode()
    assert frame.startswith(b"data: ")
    data = frame[6:]
    return data.decode() if data == b"[DONE]" else orjson.loads(data)


def test_models_list_and_single_model() -> None:
    model = {
        "type": "model",
        "id": "claude-a",
        "display_name": "A",
        "created_at": "2025-01-01T00:00:00Z",
    }
    listing = {"data": [model, {"id": "b", "created_at": "not a date"}], "has_more": False}
    assert anthropic_models_to_openai(listing) == {
        "object": "list",
        "data": [
            {"id": "claude-a", "object": "model", "created": 1735689600, "owned_by": "lynkr"},
            {"id": "b", "object": "model", "created": 0, "owned_by": "lynkr"},
        ],
    }
    assert anthropic_models_to_openai(model, owned_by="me")["owned_by"] == "me"


def test_missing_tool_call_id_is_generated() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"function": {"name": "A", "arguments": "{}"}}]},
        ],
    }
    tool_use = openai_request_to_anthropic(body)["messages"][1]["content"][0]
    assert tool_use["id"].startswith("toolu_") and len(tool_use["id"]) >= 26
