"""Several upstream answers shown to the client as one Anthropic message (server/hybrid modes).

When lynkr runs tools itself, one client turn takes several upstream calls
("steps"). The client must still see one well-formed message:
one `message_start`, content blocks numbered 0, 1, 2… across all steps, one
`message_delta` with the final stop reason and the usage of every step, one
`message_stop` — and never a `tool_use` block of lynkr's own tools, which the
client would try to execute. What lynkr's tools did is shown as a short text
block instead, so the history the client sends back still tells the model.

`StepMerger` is a pure state machine over parsed SSE events (and whole
messages, for clients that do not stream); the loop does the I/O. Each
step's blocks are assembled by a `MessageAccumulator` (`LENIENT` rules, as
sessions assemble a recorded answer); the merger numbers and filters them
for the client.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from lynkr.protocol.accumulate import LENIENT, MessageAccumulator

__all__ = ["Step", "StepMerger", "Usage"]

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
        self._step = MessageAccumulator(LENIENT)
        # Open blocks by upstream index: the client's index, None for a hidden block.
        self._open: dict[Any, int | None] = {}

    # Streaming ---------------------------------------------------------------

    def begin_step(self) -> None:
        self._step = MessageAccumulator(LENIENT)
        self._open = {}

    def feed(self, name: str, data: dict[str, Any]) -> list[Event]:
        """One upstream event of the current step → the events to send the client now."""
        handler = getattr(self, f"_on_{name}", None)
        return handler(data) if handler is not None else []

    def end_step(self) -> Step:
        step = self._step
        return Step(blocks=step.content(), stop_reason=step.stop_reason, usage=step.usage)

    def _on_message_start(self, data: dict[str, Any]) -> list[Event]:
        self._step.apply("message_start", data)
        if self.started:
            return []
        self.started = True
        message = data.get("message") or {}
        message = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        return [("message_start", {"type": "message_start", "message": message})]

    def _on_ping(self, data: dict[str, Any]) -> list[Event]:
        return [("ping", {"type": "ping"})]

    def _on_content_block_start(self, data: dict[str, Any]) -> list[Event]:
        self._step.apply("content_block_start", data)
        block = data.get("content_block") or {}
        client_index = None if self._is_internal(block) else self._take_index()
        self._open[data.get("index", 0)] = client_index
        if client_index is None:
            return []
        return [("content_block_start", {**data, "index": client_index})]

    def _on_content_block_delta(self, data: dict[str, Any]) -> list[Event]:
        self._step.apply("content_block_delta", data)
        client_index = self._open.get(data.get("index", 0))
        if client_index is None:
            return []
        return [("content_block_delta", {**data, "index": client_index})]

    def _on_content_block_stop(self, data: dict[str, Any]) -> list[Event]:
        self._step.apply("content_block_stop", data)
        client_index = self._open.pop(data.get("index", 0), None)
        if client_index is None:
            return []
        return [("content_block_stop", {**data, "index": client_index})]

    def _on_message_delta(self, data: dict[str, Any]) -> list[Event]:
        self._step.apply("message_delta", data)
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
