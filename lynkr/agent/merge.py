"""Several upstream answers shown to the client as one Anthropic message (server/hybrid modes).

When lynkr runs tools itself, one client turn takes several upstream calls
("steps"). The client must still see one well-formed message (issue #6):
one `message_start`, content blocks numbered 0, 1, 2… across all steps, one
`message_delta` with the final stop reason and the usage of every step, one
`message_stop` — and never a `tool_use` block of lynkr's own tools, which the
client would try to execute. What lynkr's tools did is shown as a short text
block instead, so the history the client sends back still tells the model.

`StepMerger` is a pure state machine over parsed SSE events (and whole
messages, for clients that do not stream); the loop does the I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from lynkr.protocol import SSEDecoder

__all__ = ["Step", "StepMerger", "Usage", "assemble_answer"]

Event = tuple[str, dict[str, Any]]

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


@dataclass(slots=True)
class Usage:
    """Token counts summed over the steps of one client turn."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_USAGE_KEYS, 0))

    def add(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key in _USAGE_KEYS:
                value = usage.get(key)
                if isinstance(value, int):
                    self.counts[key] += value


@dataclass(slots=True)
class Step:
    """One upstream answer, assembled: every block (lynkr's tool calls too) and its ending."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


class StepMerger:
    """Renumbers and filters the events of successive steps into one client message."""

    def __init__(self, *, internal_tools: Collection[str]) -> None:
        self.internal = frozenset(internal_tools)
        self.usage = Usage()
        self.started = False
        self._next_index = 0
        self._step = Step()
        self._open: dict[int, tuple[int | None, dict[str, Any], list[str]]] = {}

    # Streaming ---------------------------------------------------------------

    def begin_step(self) -> None:
        self._step = Step()
        self._open = {}

    def feed(self, name: str, data: dict[str, Any]) -> list[Event]:
        """One upstream event of the current step → the events to send the client now."""
        handler = getattr(self, f"_on_{name}", None)
        return handler(data) if handler is not None else []

    def end_step(self) -> Step:
        return self._step

    def _on_message_start(self, data: dict[str, Any]) -> list[Event]:
        message = data.get("message") or {}
        self._step.usage = dict(message.get("usage") or {})
        if self.started:
            return []
        self.started = True
        message = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        return [("message_start", {"type": "message_start", "message": message})]

    def _on_ping(self, data: dict[str, Any]) -> list[Event]:
        return [("ping", {"type": "ping"})]

    def _on_content_block_start(self, data: dict[str, Any]) -> list[Event]:
        block = dict(data.get("content_block") or {})
        hidden = block.get("type") == "tool_use" and block.get("name") in self.internal
        client_index = None if hidden else self._take_index()
        self._open[data.get("index", 0)] = (client_index, block, [])
        if client_index is None:
            return []
        return [("content_block_start", {**data, "index": client_index})]

    def _on_content_block_delta(self, data: dict[str, Any]) -> list[Event]:
        entry = self._open.get(data.get("index", 0))
        if entry is None:
            return []
        client_index, block, parts = entry
        _apply_delta(block, parts, data.get("delta") or {})
        return (
            []
            if client_index is None
            else [("content_block_delta", {**data, "index": client_index})]
        )

    def _on_content_block_stop(self, data: dict[str, Any]) -> list[Event]:
        entry = self._open.pop(data.get("index", 0), None)
        if entry is None:
            return []
        client_index, block, parts = entry
        if block.get("type") == "tool_use":
            block["input"] = _parse_input(parts, block.get("input"))
        self._step.blocks.append(block)
        return (
            []
            if client_index is None
            else [("content_block_stop", {**data, "index": client_index})]
        )

    def _on_message_delta(self, data: dict[str, Any]) -> list[Event]:
        self._step.stop_reason = (data.get("delta") or {}).get("stop_reason")
        self._step.usage.update(data.get("usage") or {})
        return []  # the client gets one message_delta, at the very end

    def _on_error(self, data: dict[str, Any]) -> list[Event]:
        return [("error", data)]

    # Whole messages ------------------------------------------------------------

    def feed_message(self, message: dict[str, Any]) -> tuple[Step, list[dict[str, Any]]]:
        """A non-streamed step: the step, and the blocks the client may see."""
        step = Step(
            blocks=list(message.get("content") or []),
            stop_reason=message.get("stop_reason"),
            usage=dict(message.get("usage") or {}),
        )
        visible = [block for block in step.blocks if not self._is_internal(block)]
        self._next_index += len(visible)
        self.started = True
        return step, visible

    # Shared --------------------------------------------------------------------

    def note(self, text: str) -> list[Event]:
        """A text block lynkr adds itself (what its tools did, why the turn stopped)."""
        index = self._take_index()
        return [
            (
                "content_block_start",
                {"type": "content_block_start", "index": index,
                 "content_block": {"type": "text", "text": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": index,
                 "delta": {"type": "text_delta", "text": text}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]  # fmt: skip

    def finish(self, stop_reason: str | None) -> list[Event]:
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        return [
            (
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": self.usage.counts},
            ),
            ("message_stop", {"type": "message_stop"}),
        ]

    def internal_calls(self, step: Step) -> list[dict[str, Any]]:
        return [block for block in step.blocks if self._is_internal(block)]

    def client_calls(self, step: Step) -> list[dict[str, Any]]:
        return [
            block
            for block in step.blocks
            if block.get("type") == "tool_use" and not self._is_internal(block)
        ]

    def _is_internal(self, block: dict[str, Any]) -> bool:
        return block.get("type") == "tool_use" and block.get("name") in self.internal

    def _take_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index


def _apply_delta(block: dict[str, Any], parts: list[str], delta: dict[str, Any]) -> None:
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "input_json_delta":
        parts.append(delta.get("partial_json", ""))
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = delta.get("signature", "")


def _parse_input(parts: list[str], start: Any) -> Any:
    raw = "".join(parts)
    if not raw:
        return start if isinstance(start, dict) else {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"__unparsedToolInput": {"raw": raw, "len": len(raw)}}


def assemble_answer(body: bytes, content_type: str) -> dict[str, Any] | None:
    """A whole Anthropic message from a relayed answer: JSON as is, SSE assembled.

    Used off the request path (sessions record the answer after it was sent).
    """
    if content_type.startswith("application/json"):
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return message if isinstance(message, dict) else None
    merger = StepMerger(internal_tools=())
    merger.begin_step()
    decoder = SSEDecoder()
    finished = False
    for event in [*decoder.feed(body), *decoder.flush()]:
        if event.event == "error":
            return None  # the answer failed: nothing to record as one
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
