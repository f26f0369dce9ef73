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
from lynkr.protocol.frames import delta_string, plain_frame
from lynkr.protocol.sse import delta_frame_prefix

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
        # Open blocks by upstream index: the client's index (None: hidden), the block,
        # its tool-input fragments, and its text/thinking pieces (joined when it stops:
        # growing a string per delta is quadratic in the answer's length).
        self._open: dict[int, _OpenBlock] = {}

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
        client_index = None if self._is_internal(block) else self._take_index()
        self._open[data.get("index", 0)] = (client_index, block, [], {})
        if client_index is None:
            return []
        return [("content_block_start", {**data, "index": client_index})]

    def _on_content_block_delta(self, data: dict[str, Any]) -> list[Event]:
        entry = self._open.get(data.get("index", 0))
        if entry is None:
            return []
        client_index, block, parts, pieces = entry
        _apply_delta(block, parts, pieces, data.get("delta") or {})
        return (
            []
            if client_index is None
            else [("content_block_delta", {**data, "index": client_index})]
        )

    def _on_content_block_stop(self, data: dict[str, Any]) -> list[Event]:
        entry = self._open.pop(data.get("index", 0), None)
        if entry is None:
            return []
        client_index, block, parts, pieces = entry
        for name, joined in pieces.items():
            block[name] = block.get(name, "") + "".join(joined)
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


_OpenBlock = tuple[int | None, dict[str, Any], list[str], dict[str, list[str]]]


def _apply_delta(
    block: dict[str, Any], parts: list[str], pieces: dict[str, list[str]], delta: dict[str, Any]
) -> None:
    kind = delta.get("type")
    if kind == "text_delta":
        pieces.setdefault("text", []).append(delta.get("text", ""))
    elif kind == "input_json_delta":
        parts.append(delta.get("partial_json", ""))
    elif kind == "thinking_delta":
        pieces.setdefault("thinking", []).append(delta.get("thinking", ""))
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
    The stream is assembled as `StepMerger` assembles one step — its blocks
    in the order they stop, with their text, thinking, signature and parsed
    tool input — by `_Assembly`, which builds no client events.
    """
    if content_type.startswith("application/json"):
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return message if isinstance(message, dict) else None
    return _Assembly().read(body)


class _Assembly:
    """One answer's blocks, stop reason and usage, from its SSE bytes (`assemble_answer`).

    It runs once per event of every recorded answer, so the common frames
    are cheap. A body with only `\\n` line ends is split on blank lines and
    each frame that is one `event:` line and one `data:` line is read by
    hand; from the first frame that is not, `SSEDecoder` reads the rest. A
    delta continuing the block of the previous one, in Anthropic's compact
    JSON, is recognised by its bytes (`follow`) and only its string parsed.
    Text and thinking are kept as lists of pieces, joined when the block stops.
    """

    __slots__ = ("blocks", "finished", "follow", "open", "stop_reason", "usage")

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.stop_reason: Any = None
        self.usage: dict[str, Any] = {}
        self.finished = False
        self.open: dict[Any, _Block] = {}
        # How a frame continuing the last delta starts, and where its piece goes.
        self.follow: tuple[bytes, list[Any]] | None = None

    def read(self, body: bytes) -> dict[str, Any] | None:
        if _CR in body:
            return self.decode(body)
        frames = body.split(b"\n\n")
        frames.pop()  # after the last blank line: an event never finished (a decoder drops it)
        for at, frame in enumerate(frames):
            follow = self.follow
            piece = None if follow is None else delta_string(frame, follow[0])
            if piece is not None:
                assert follow is not None
                follow[1].append(piece)
                continue
            plain = plain_frame(frame)
            if plain is None:
                return self.decode(body[sum(len(done) + 2 for done in frames[:at]) :])
            if not self.event(*plain):
                return None
        return self.answer()

    def decode(self, rest: bytes) -> dict[str, Any] | None:
        """Read `rest` of the body with `SSEDecoder`, which starts between events."""
        decoder = SSEDecoder()
        for event in [*decoder.feed(rest), *decoder.flush()]:
            if not self.event(event.event, event.data):
                return None
        return self.answer()

    def answer(self) -> dict[str, Any] | None:
        if not self.finished:
            return None
        return {"content": self.blocks, "stop_reason": self.stop_reason, "usage": self.usage}

    def event(self, name: str | None, data: bytes) -> bool:
        """Apply one event; False if the answer is not one (an error, or data not JSON)."""
        if name == "error":
            return False  # the answer failed: nothing to record as one
        self.finished = self.finished or name == "message_stop"
        if name and data:
            try:
                self.feed(name, orjson.loads(data))
            except orjson.JSONDecodeError:
                return False
        return True

    def feed(self, name: str, data: Any) -> None:
        """`StepMerger.feed` for one step, keeping only what the step holds."""
        if name == "content_block_delta":
            index = data.get("index", 0)
            entry = self.open.get(index)
            if entry is not None:
                self.delta(entry, data.get("delta") or {}, index)
        elif name == "content_block_start":
            self.follow = None
            self.open[data.get("index", 0)] = _Block(dict(data.get("content_block") or {}))
        elif name == "content_block_stop":
            self.follow = None
            entry = self.open.pop(data.get("index", 0), None)
            if entry is not None:
                block = entry.joined()
                if block.get("type") == "tool_use":
                    block["input"] = _parse_input(entry.json, block.get("input"))
                self.blocks.append(block)
        elif name == "message_start":
            message = data.get("message") or {}
            self.usage = dict(message.get("usage") or {})
        elif name == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason")
            self.usage.update(data.get("usage") or {})

    def delta(self, entry: _Block, delta: Any, index: Any) -> None:
        """`_apply_delta`, keeping text and thinking as pieces."""
        kind = delta.get("type")
        parts: list[Any] | None
        if kind == "text_delta":
            parts = entry.add("text", delta.get("text", ""))
        elif kind == "input_json_delta":
            parts = entry.json
            parts.append(delta.get("partial_json", ""))
        elif kind == "thinking_delta":
            parts = entry.add("thinking", delta.get("thinking", ""))
        else:
            if kind == "signature_delta":
                entry.block["signature"] = delta.get("signature", "")
            return
        self.follow = None
        if parts is not None and type(index) is int:
            self.follow = (delta_frame_prefix(index, kind), parts)


class _Block:
    """An open block, its tool input fragments, and text or thinking not yet joined."""

    __slots__ = ("block", "json", "pieces")

    def __init__(self, block: dict[str, Any]) -> None:
        self.block = block
        self.json: list[Any] = []
        self.pieces: dict[str, list[str]] = {}

    def add(self, field: str, piece: Any) -> list[str] | None:
        """`block[field] = block.get(field, "") + piece`, deferred while both are strings.

        The pieces it went to, or None when the field is not a string (then
        each piece is added at once, exactly as that line would).
        """
        parts = self.pieces.get(field)
        if parts is not None and type(piece) is str:
            parts.append(piece)
            return parts
        block = self.block
        if parts:
            block[field] = block[field] + "".join(parts)
            parts.clear()
        block[field] = block.get(field, "") + piece
        if type(block[field]) is not str:
            self.pieces.pop(field, None)
            return None
        return self.pieces.setdefault(field, [])

    def joined(self) -> dict[str, Any]:
        """The block, its text and thinking whole."""
        block = self.block
        for name, parts in self.pieces.items():
            if parts:
                block[name] = block[name] + "".join(parts)
                parts.clear()
        return block


_CR = 0x0D
