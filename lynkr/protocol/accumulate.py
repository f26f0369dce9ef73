"""Assembling one Anthropic message from its relayed bytes (pure).

`assemble_answer` turns an answer as it went to the client — a JSON message,
or an SSE stream — into the message it describes, for the session store.
"""

from __future__ import annotations

from typing import Any

import orjson

from lynkr.protocol.sse import SSEDecoder, delta_frame_prefix, delta_string, plain_frame

__all__ = ["assemble_answer"]


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
