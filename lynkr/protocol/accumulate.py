"""One Anthropic message assembled from the events of its stream.

`MessageAccumulator` applies the events of one streamed answer: text from
`text_delta`s, a tool call's `input` from its joined `input_json_delta`s,
thinking with its `signature_delta`, citations, and the blocks that arrive
whole (redacted thinking, server tool results) as they were sent. Text and
thinking are kept as lists of pieces and joined once, so a long answer costs
time linear in its length. It reads the stream's bytes itself (it is a
`FrameScanner`, and follows each block's continuing deltas) or takes events
already decoded (`apply`).

Its readers do not agree on what to do with a stream that is off the
grammar, on purpose, so each variation is a field of `Rules`:

- `STRICT` is the cache recorder's: an answer is stored only to be replayed
  as if it came from the model, so anything it could not replay faithfully —
  an `error` event, an event name unlike its JSON `type`, an event outside
  `message_start` … `message_stop`, a delta it does not know, a missing or
  ill-typed field, tool input that is not JSON — spoils the whole stream.
- `LENIENT` is the tool loop's (`StepMerger`, one upstream answer per step)
  and the session recorder's (`assemble_answer`): it keeps what it can read,
  as `dict.get` with defaults reads it, and an `error` event or data that is
  not JSON still means there is no answer.

`assemble_answer` is the sessions' entry: the whole message of a relayed
answer, JSON or SSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson

from lynkr.protocol.frames import FrameScanner
from lynkr.protocol.sse import delta_frame_prefix

__all__ = ["LENIENT", "STRICT", "MessageAccumulator", "Rules", "assemble_answer"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rules:
    """How a `MessageAccumulator` reads its events; each field is one way its readers differ.

    `names` — what says which event a frame is. `"type"`: its JSON `type`;
    an event name, when there is one, must equal it (Anthropic sends both),
    and every frame needs JSON data. `"event"`: its event name; the JSON
    `type` is not looked at, and a frame without a name or without data is
    skipped (a `message_stop` with empty data still ends the message).
    Either way an `error` event spoils the answer, even after
    `message_stop`, and so does data that is not JSON; `ping` and unknown
    events are tolerated.

    `framed` — content and message events outside `message_start` …
    `message_stop` (a second `message_stop` too) spoil the answer, and there
    is no answer without `message_start`.

    `order` — `"index"`: every block started, by index, whether it stopped
    or not (a block restarted at an index replaces it; a delta after its stop
    still applies). `"stop"`: the blocks in the order they stopped, blocks
    never stopped left out (a delta takes effect only between start and stop).

    `unknown_delta` — a delta of a kind not known here: `"fail"` spoils the
    answer, `"ignore"` skips it. `citations` — `citations_delta`s are
    collected into the block's `citations` (else it is an unknown delta).

    `tool_input` — which blocks take their joined `input_json_delta`s as
    `input` when they stop: `"any"` (server tool calls too; a block with
    none keeps the input it started with), or `"tool_use"` only (one with
    none gets its start's input if an object, else `{}`: what the tool loop
    runs). `bad_input` — input that is not JSON: `"fail"` spoils the answer,
    `"keep"` stores `{"__unparsedToolInput": {"raw", "len"}}` instead.

    `fields` — `"required"`: a missing or ill-typed field (an index that is
    not a number, a delta without its type or its string, text that is not a
    string, a delta for a block never started) spoils the answer.
    `"defaults"`: fields are read with `StepMerger`'s defaults (index 0, text
    `""`, missing blocks skipped) and combined as Python combines them (text
    `+` piece, `dict.update` for usage), an error there raising to the caller.

    `keep` — `"message"`: the whole message, `message_start`'s fields with
    `stop_reason`, `stop_sequence` and `usage` (merged key by key when it is
    an object) from `message_delta`. `"step"`: its `content`, `stop_reason`
    and `usage` only (`message_start`'s, then each `message_delta`'s).
    """

    names: Literal["type", "event"] = "type"
    framed: bool = True
    order: Literal["index", "stop"] = "index"
    unknown_delta: Literal["fail", "ignore"] = "fail"
    citations: bool = True
    tool_input: Literal["any", "tool_use"] = "any"
    bad_input: Literal["fail", "keep"] = "fail"
    fields: Literal["required", "defaults"] = "required"
    keep: Literal["message", "step"] = "message"


STRICT = Rules()
LENIENT = Rules(
    names="event",
    framed=False,
    order="stop",
    unknown_delta="ignore",
    citations=False,
    tool_input="tool_use",
    bad_input="keep",
    fields="defaults",
    keep="step",
)

_IN_MESSAGE = frozenset(
    {"content_block_start", "content_block_delta", "content_block_stop", "message_delta"}
    | {"message_stop"}
)
# Deltas whose strings join into a field of the block; tool input is kept apart.
_TEXT_FIELDS = {"text_delta": "text", "thinking_delta": "thinking"}
# What reading a field `required` raises when it is missing or ill-typed.
_FIELD_ERRORS = (ValueError, KeyError, TypeError, AttributeError)


class MessageAccumulator(FrameScanner):
    """Applies one answer's events; `result()` is the message, or None (see `Rules`).

    `feed()` and `flush()` read its SSE bytes (`FrameScanner`; `feed` may
    raise `FrameTooLarge` past `max_frame`), `apply()` takes decoded events.
    """

    __slots__ = (
        "_blocks",
        "_by_name",
        "_framed",
        "_message",
        "_required",
        "_started",
        "_stopped",
        "failed",
        "finished",
        "rules",
        "stop_reason",
        "usage",
    )

    def __init__(self, rules: Rules = STRICT, *, max_frame: int | None = None) -> None:
        super().__init__(max_frame=max_frame)
        self.rules = rules
        self.failed = False
        self.finished = False
        self.stop_reason: Any = None  # keep="step"
        self.usage: Any = {}  # keep="step"
        # The rules read per event, as plain flags.
        self._by_name = rules.names == "event"
        self._framed = rules.framed
        self._required = rules.fields == "required"
        self._message: Json = {}  # keep="message": message_start's message, then message_delta's
        self._started = False
        # order="index": every block by index; order="stop": the open ones, until they stop.
        self._blocks: dict[Any, _Block] = {}
        self._stopped: list[Json] = []  # order="stop": the blocks that stopped, in order

    def fail(self) -> None:
        """Give up on the answer: `result()` is None; nothing more is read or held."""
        self.failed = True
        self._blocks.clear()
        self._stopped.clear()
        self.close()

    def result(self) -> Json | None:
        """The assembled message, if the answer completed cleanly (`Rules.keep` says its form)."""
        if self.failed or not self.finished or (self.rules.framed and not self._started):
            return None
        if self.rules.keep == "step":
            return {"content": self.content(), "stop_reason": self.stop_reason, "usage": self.usage}
        return {**self._message, "content": self.content()}

    def content(self) -> list[Json]:
        """The blocks assembled so far, in `Rules.order`."""
        if self.rules.order == "stop":
            return list(self._stopped)
        return [self._blocks[index].joined() for index in sorted(self._blocks)]

    # Frames and events -------------------------------------------------------------

    def frame(self, name: str | None, data: bytes, raw: bytes) -> bool:
        """One frame of the stream (`FrameScanner`); True once the answer is spoiled."""
        by_name = self._by_name
        if by_name:
            if name == "error":
                self.fail()  # the answer failed: nothing to keep as one
                return True
            if not (name and data):
                if name == "message_stop":
                    self._apply(name, None)  # it needs no data to end the message
                return self.failed
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.fail()
            return True
        kind: Any = name
        if not by_name:
            kind = payload.get("type") if isinstance(payload, dict) else None
            if (name is not None and name != kind) or kind == "error":
                self.fail()  # B.1: the JSON's `type` equals the event name; errors end it
                return True
        if not self._required:
            self._apply(kind, payload)
            return self.failed
        try:
            self._apply(kind, payload)
        except _FIELD_ERRORS:  # ValueError: a bad index, or tool input that is not JSON
            self.fail()
        return self.failed

    def apply(self, kind: Any, data: Any) -> None:
        """One decoded event: its kind (event name or `type`) and its JSON data."""
        if not self._required:
            self._apply(kind, data)
            return
        try:
            self._apply(kind, data)
        except _FIELD_ERRORS:  # ValueError: a bad index, or tool input that is not JSON
            self.fail()

    def _apply(self, kind: Any, data: Any) -> None:
        if kind == "message_start":
            self._start_message(data)
        elif self._framed and kind in _IN_MESSAGE and (not self._started or self.finished):
            self.fail()  # outside message_start … message_stop
        elif kind == "content_block_delta":
            self._delta(data)
        elif kind == "content_block_start":
            self._start_block(data)
        elif kind == "content_block_stop":
            self._stop_block(data)
        elif kind == "message_delta":
            self._message_delta(data)
        elif kind == "message_stop":
            self.finished = True
            self.follow(None)
        # ping and unknown event types are tolerated (docs/protocol.md B.1 "Details").

    def _start_message(self, data: Any) -> None:
        self._started = True
        if self.rules.keep == "message":
            self._message = {**data["message"], "content": []}
        else:
            message = data.get("message") or {}
            self.usage = dict(message.get("usage") or {})

    def _message_delta(self, data: Any) -> None:
        delta = data.get("delta") or {}
        if self.rules.keep == "step":
            self.stop_reason = delta.get("stop_reason")
            self.usage.update(data.get("usage") or {})
            return
        message = self._message
        message["stop_reason"] = delta.get("stop_reason")
        message["stop_sequence"] = delta.get("stop_sequence")
        if isinstance(data.get("usage"), dict):
            message["usage"] = {**(message.get("usage") or {}), **data["usage"]}

    def _index(self, data: Any) -> Any:
        return int(data["index"]) if self._required else data.get("index", 0)

    def _start_block(self, data: Any) -> None:
        index = self._index(data)
        if self._required:
            content = dict(data["content_block"])
        else:
            content = dict(data.get("content_block") or {})
        self._blocks[index] = _Block(content)
        self.follow(None)

    def _stop_block(self, data: Any) -> None:
        index = self._index(data)
        self.follow(None)
        if self.rules.order == "index":
            block = self._blocks.get(index)
        else:
            block = self._blocks.pop(index, None)
        if block is None:
            return
        content = block.joined()
        self._input(block, content)
        if self.rules.order == "stop":
            self._stopped.append(content)

    def _input(self, block: _Block, content: Json) -> None:
        """The block's tool input, from the fragments since its start (or its last stop)."""
        parts, block.json = block.json, []
        tool_use_only = self.rules.tool_input == "tool_use"
        if tool_use_only and content.get("type") != "tool_use":
            return
        raw = "".join(parts)
        if not raw:
            if tool_use_only:
                start = content.get("input")
                content["input"] = start if isinstance(start, dict) else {}
            return
        try:
            content["input"] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if self.rules.bad_input == "fail":
                self.fail()
            else:
                content["input"] = {"__unparsedToolInput": {"raw": raw, "len": len(raw)}}

    def _delta(self, data: Any) -> None:
        required = self._required
        index = self._index(data)
        block = self._blocks.get(index)
        if block is None:
            if required:
                self.fail()  # a delta for a block never started
            return
        delta = data["delta"] if required else data.get("delta") or {}
        kind = delta["type"] if required else delta.get("type")
        parts: list[Any] | None
        if kind == "input_json_delta":
            parts = block.json
            parts.append(delta["partial_json"] if required else delta.get("partial_json", ""))
        elif kind in _TEXT_FIELDS:
            field = _TEXT_FIELDS[kind]
            piece = delta[field] if required else delta.get(field, "")
            parts = block.add(field, piece, strict=required)
        elif kind == "signature_delta":
            block.content["signature"] = (
                delta["signature"] if required else delta.get("signature", "")
            )
            return
        elif kind == "citations_delta" and self.rules.citations:
            citation = delta["citation"] if required else delta.get("citation")
            block.content.setdefault("citations", []).append(citation)
            return
        else:
            if self.rules.unknown_delta == "fail":
                self.fail()  # a delta we cannot replay faithfully
            return
        if parts is not None and type(index) is int:
            self.follow(_prefix(index, kind), parts)
        else:
            self.follow(None)


@lru_cache(maxsize=64)
def _prefix(index: int, kind: str) -> bytes:
    """`delta_frame_prefix`, kept for the few indexes of an answer (`apply` asks per delta)."""
    return delta_frame_prefix(index, kind)


class _Block:
    """A block as it arrives: its fields, its tool input fragments, text and thinking pieces."""

    __slots__ = ("content", "json", "pieces")

    def __init__(self, content: Json) -> None:
        self.content = content
        self.json: list[Any] = []
        self.pieces: dict[str, list[str]] = {}

    def add(self, field: str, piece: Any, *, strict: bool) -> list[str] | None:
        """`content[field] = content.get(field, "") + piece`, deferred while both are strings.

        The pieces it went to, or None when the field is not a string (then
        each piece is added at once, exactly as that line would). `strict`:
        a field or piece that is not a string raises TypeError.
        """
        parts = self.pieces.get(field)
        if parts is not None and type(piece) is str:
            parts.append(piece)
            return parts
        content = self.content
        if parts:
            content[field] = content[field] + "".join(parts)
            parts.clear()
        if strict and (type(piece) is not str or type(content.get(field, "")) is not str):
            raise TypeError(f"{field} is not a string")
        content[field] = content.get(field, "") + piece
        if type(content[field]) is not str:
            self.pieces.pop(field, None)
            return None
        return self.pieces.setdefault(field, [])

    def joined(self) -> Json:
        """The block, its text and thinking whole."""
        content = self.content
        for name, parts in self.pieces.items():
            if parts:
                content[name] = content[name] + "".join(parts)
                parts.clear()
        return content


def assemble_answer(body: bytes, content_type: str) -> dict[str, Any] | None:
    """A whole Anthropic message from a relayed answer: JSON as is, SSE assembled.

    Used off the request path (sessions record the answer after it was sent).
    The stream is assembled as `StepMerger` assembles one step (`LENIENT`):
    its blocks in the order they stop, with their text, thinking, signature
    and parsed tool input; None for an `error` event, data that is not JSON,
    or no `message_stop`.
    """
    if content_type.startswith("application/json"):
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return message if isinstance(message, dict) else None
    answer = MessageAccumulator(LENIENT)
    answer.feed(body)
    answer.flush()
    return answer.result()
