"""Helpers shared by the OpenAI translator tests: id normalising and the adapter's stream loop."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from lynkr.protocol.openai_stream import OpenAIStreamTranslator
from lynkr.protocol.sse import SSEDecoder

_GENERATED = re.compile(r"^(toolu_|msg_)[A-Za-z0-9]{24}$")


def normalise(value: Any) -> Any:
    """`value` with generated ids (`toolu_…`, `msg_…`) replaced by `<prefix><generated>`."""
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, str) and (match := _GENERATED.match(value)):
        return f"{match[1]}<generated>"
    return value


def translate(pieces: Iterable[bytes], **options: Any) -> tuple[bytes, OpenAIStreamTranslator]:
    """Run upstream SSE bytes through SSEDecoder and the translator, as the adapter does.

    Feeding stops at `[DONE]` or after an error frame; `finish(done=…)` ends
    the stream unless it already failed.
    """
    translator = OpenAIStreamTranslator(**options)
    out = [translator.start()]
    decoder = SSEDecoder()
    done = False
    for piece in [*pieces, None]:
        batch = decoder.feed(piece) if piece is not None else decoder.flush()
        for event in batch:
            data = event.data.strip()
            if data == b"[DONE]":
                done = True
                break
            if data:
                out.append(translator.feed(orjson.loads(data)))
            if translator.errored:
                break
        if done or translator.errored:
            break
    out.append(translator.finish(done=done))
    return b"".join(out), translator


def events(stream: bytes) -> list[dict[str, Any]]:
    """The payloads of an Anthropic SSE stream; every frame's event name must equal its `type`."""
    decoder = SSEDecoder()
    decoded = decoder.feed(stream) + decoder.flush()
    payloads = [orjson.loads(event.data) for event in decoded]
    for event, payload in zip(decoded, payloads, strict=True):
        assert event.event == payload["type"], event
    assert b"".join(event.raw for event in decoded) == stream  # nothing but whole frames
    return payloads


def sse(chunks: Iterable[Any], *, done: bool = True) -> bytes:
    """Upstream OpenAI SSE bytes for `chunks` (objects or ready `data:` strings)."""
    lines = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    return b"".join(lines) + (b"data: [DONE]\n\n" if done else b"")


def assemble(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The Message a client builds from an Anthropic event sequence (B.1 "Streaming grammar")."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for payload in payloads:
        kind = payload["type"]
        if kind == "message_start":
            message = {**payload["message"], "content": []}
        elif kind == "content_block_start":
            assert payload["index"] == len(message["content"])
            message["content"].append(dict(payload["content_block"]))
        elif kind == "content_block_delta":
            _apply(
                message["content"][payload["index"]], payload["delta"], partial, payload["index"]
            )
        elif kind == "content_block_stop" and payload["index"] in partial:
            message["content"][payload["index"]]["input"] = orjson.loads(partial[payload["index"]])
        elif kind == "message_delta":
            message.update(payload["delta"])
            message["usage"] = {**message["usage"], **payload["usage"]}
    return message


def _apply(block: dict[str, Any], delta: dict[str, Any], partial: dict[int, str], at: int) -> None:
    kind = delta["type"]
    if kind == "text_delta":
        block["text"] += delta["text"]
    elif kind == "thinking_delta":
        block["thinking"] += delta["thinking"]
    elif kind == "signature_delta":
        block["signature"] = delta["signature"]
    else:
        assert kind == "input_json_delta"
        partial[at] = partial.get(at, "") + delta["partial_json"]
