"""Anthropic ⇄ Ollama `/api/chat` (ollama.py, docs/protocol.md B.6, cases 46–47), from golden files.

Generated ids are compared by shape: `toolu_…`/`msg_…` with 24 random hex
digits read as `toolu_GENERATED`/`msg_GENERATED`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from lynkr.errors import UpstreamError
from lynkr.protocol import SSEDecoder
from lynkr.protocol.ollama import (
    OllamaOptions,
    OllamaStreamTranslator,
    ollama_to_anthropic_message,
    to_ollama_request,
)

from ._golden import cases

_GENERATED = re.compile(r"\b(toolu|msg)_[0-9a-f]{24}\b")


def generated_ids_named(value: Any) -> Any:
    return orjson.loads(_GENERATED.sub(r"\1_GENERATED", orjson.dumps(value).decode()))


def events(stream: bytes) -> list[dict[str, Any]]:
    """The SSE events of `stream`; every frame must name its event, equal to its data's type."""
    decoded = SSEDecoder().feed(stream)
    assert b"".join(event.raw for event in decoded) == stream
    out = []
    for event in decoded:
        data = orjson.loads(event.data)
        assert event.event == data["type"]
        out.append({"event": event.event, "data": data})
    return out


@pytest.mark.parametrize("case", cases("ollama/request.json"))
def test_request(case: dict[str, Any]) -> None:
    before = orjson.dumps(case["input"])
    assert to_ollama_request(case["input"], OllamaOptions(**case["options"])) == case["expected"]
    assert orjson.dumps(case["input"]) == before  # the client's request is left untouched


@pytest.mark.parametrize("case", cases("ollama/response.json"))
def test_response(case: dict[str, Any]) -> None:
    message = ollama_to_anthropic_message(case["input"], model=case["options"]["model"])
    assert generated_ids_named(message) == case["expected"]


@pytest.mark.parametrize("case", cases("ollama/stream.json"))
def test_stream(case: dict[str, Any]) -> None:
    options = case["options"]
    translator = OllamaStreamTranslator(
        model=options["model"], input_tokens=options.get("input_tokens", 0), message_id="msg_1"
    )
    out = translator.start()
    for line in case["input"]:
        out += translator.feed(line)
    out += translator.finish(done=options["done"])
    expected = case["expected"]
    assert generated_ids_named(events(out)) == expected["events"]
    assert (translator.completed, translator.errored) == (
        expected["completed"],
        expected["errored"],
    )
    assert translator.finish(done=True) == translator.fail("again") == b""


def test_error_body_raises() -> None:
    with pytest.raises(UpstreamError, match="model 'x' not found"):
        ollama_to_anthropic_message({"error": "model 'x' not found"}, model="m")


def test_generated_ids_have_anthropic_shape() -> None:
    line = {"message": {"tool_calls": [{"function": {"name": "A", "arguments": {}}}]}}
    message = ollama_to_anthropic_message(line, model="m")
    assert re.fullmatch(r"toolu_[A-Za-z0-9]{20,}", message["content"][0]["id"])
    assert re.fullmatch(r"msg_[A-Za-z0-9]{20,}", message["id"])
