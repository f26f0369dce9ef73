"""Recording answers as they pass, and turning a stored answer into a hit (pure).

`StreamRecorder` is fed the bytes of an Anthropic SSE stream chunk by chunk
(the caller forwards each chunk first, so recording never delays the
client) and assembles the message the events describe (PROTOCOL.md B.1
"Streaming grammar"): text from `text_delta`s, a tool_use `input` from its
joined `input_json_delta`s, thinking with its `signature_delta`, citations;
blocks that arrive whole (redacted thinking, server tool results) as sent.
It yields a message only for a stream that reached `message_stop` without
an `error` event, an unknown delta, or unparsable tool input.

`JSONRecorder` does the same for a non-streaming answer.

`storable` says which complete answers may be stored, `hit_message` turns a
stored one into the answer for a hit: a fresh id, and usage reporting the
whole prompt as cache reads.
"""

from __future__ import annotations

from typing import Any

import orjson

from lynkr.protocol.frames import delta_string, plain_frame
from lynkr.protocol.openai_response import new_id
from lynkr.protocol.sse import SSEDecoder, delta_frame_prefix

__all__ = [
    "CACHEABLE_STOPS",
    "TRUNCATED_STOPS",
    "JSONRecorder",
    "StreamRecorder",
    "hit_message",
    "storable",
]

Json = dict[str, Any]

# Complete answers. `pause_turn` (to be continued) and `refusal` are not stored.
CACHEABLE_STOPS = frozenset({"end_turn", "tool_use", "stop_sequence"})
# Answers cut by a limit: stored only when the middleware is told to.
TRUNCATED_STOPS = frozenset({"max_tokens", "model_context_window_exceeded"})
_IN_MESSAGE = frozenset(
    {
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
)


class StreamRecorder:
    """Assembles a message from SSE bytes; `result()` is it, or None if incomplete or broken.

    Past `limit` bytes of stream the recorder gives up (the answer could
    not be stored anyway) and stops decoding.

    It sees every frame of every answer, so the common ones are cheap: a
    plain `event: …\ndata: …` frame is cut out of the chunk by hand (the
    stream is split on blank lines, the bytes after the last one wait for the
    next chunk), and anything else — `\r` line ends, comments, several `data:`
    lines — goes to `SSEDecoder`, which then reads the stream until it is
    between events again. The text of a `text_delta` (or thinking, or tool
    input) that continues the block of the previous delta, in Anthropic's own
    compact JSON, is read from the frame's bytes by prefix; only the string is
    parsed. Text and thinking are kept as lists of pieces, joined by `result()`.
    """

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.seen = 0
        self.failed = False
        self.finished = False
        self._decoder = SSEDecoder()
        self._pending = 0  # bytes given to the decoder and not yet back as events
        self._carry = b""  # the unfinished last frame, when the decoder is not used
        self._message: Json | None = None
        self._blocks: dict[int, Json] = {}
        self._json: dict[int, list[str]] = {}
        self._pieces: dict[tuple[int, str], list[str]] = {}  # text, thinking
        # The bytes a frame starts with when it continues the last delta, and its pieces.
        self._next: tuple[bytes, list[str]] | None = None

    def feed(self, chunk: bytes) -> None:
        """Decode `chunk` and apply its events."""
        if self.failed:
            return
        self.seen += len(chunk)
        if self.seen > self.limit:
            self._fail()
            return
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        follow = self._next
        if follow is not None and not (self._carry or self._pending):
            # The usual chunk: one whole frame, the next delta of the same block.
            piece = delta_string(chunk, follow[0], blank_line=True)
            if piece is not None:
                follow[1].append(piece)
                return
        # A frame still unfinished after `_CARRY_LIMIT` bytes goes to the decoder, which
        # keeps its pieces in a list: copying the carry on every chunk would be quadratic.
        by_hand = len(self._carry) < _CARRY_LIMIT
        buf = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if self._pending or not by_hand or _CR in buf:
            self._decode(buf)
            return
        frames = buf.split(b"\n\n")
        self._carry = frames.pop()  # no blank line after it yet
        for at, frame in enumerate(frames):
            follow = self._next
            piece = None if follow is None else delta_string(frame, follow[0])
            if piece is not None:
                assert follow is not None
                follow[1].append(piece)
                continue
            plain = plain_frame(frame)
            if plain is None:
                # Not one `event:` line and one `data:` line: the decoder's full rules.
                self._decode(buf[sum(len(done) + 2 for done in frames[:at]) :])
                return
            self._event(*plain)
            if self.failed:
                return

    def result(self) -> Json | None:
        """The assembled message, if the stream completed cleanly."""
        if self.failed or not self.finished or self._message is None:
            return None
        for (index, field), parts in self._pieces.items():
            if parts:
                block = self._blocks[index]
                block[field] += "".join(parts)
                parts.clear()
        message = dict(self._message)
        message["content"] = [self._blocks[index] for index in sorted(self._blocks)]
        return message

    def _fail(self) -> None:
        self.failed = True
        self._decoder = SSEDecoder()  # drop any buffered bytes
        self._pending, self._carry, self._next = 0, b"", None
        self._blocks.clear()
        self._json.clear()
        self._pieces.clear()

    def _decode(self, buf: bytes) -> None:
        self._carry = b""
        self._pending += len(buf)
        for event in self._decoder.feed(buf):
            self._pending -= len(event.raw)
            self._event(event.event, event.data)
            if self.failed:
                return

    def _event(self, name: str | None, data: bytes) -> None:
        if name == "ping" and data in _PINGS:
            return  # B.1: tolerated anywhere
        try:
            self._apply(name, orjson.loads(data))
        except (ValueError, KeyError, TypeError, AttributeError):  # ValueError: bad JSON too
            self._fail()

    def _apply(self, name: str | None, data: Any) -> None:
        kind = data.get("type") if isinstance(data, dict) else None
        if (name is not None and name != kind) or kind == "error":
            self._fail()  # B.1: the JSON's `type` equals the event name; errors end it
        elif kind == "message_start":
            self._message = {**data["message"], "content": []}
        elif kind in _IN_MESSAGE and (self._message is None or self.finished):
            self._fail()  # outside message_start … message_stop
        elif kind == "content_block_delta":
            self._delta(self._blocks[int(data["index"])], int(data["index"]), data["delta"])
        elif kind == "content_block_start":
            index = int(data["index"])
            self._blocks[index] = dict(data["content_block"])
            self._pieces.pop((index, "text"), None)
            self._pieces.pop((index, "thinking"), None)
            self._next = None
        elif kind == "content_block_stop":
            self._stop(int(data["index"]))
            self._next = None
        elif kind == "message_delta":
            self._message_delta(self._message or {}, data)
        elif kind == "message_stop":
            self.finished = True
            self._next = None
        # ping and unknown event types are tolerated (B.1 "Details").

    def _delta(self, block: Json, index: int, delta: Json) -> None:
        kind = delta["type"]
        if kind == "input_json_delta":
            parts = self._json.setdefault(index, [])
            parts.append(delta["partial_json"])
        elif kind in _PIECES:
            parts = self._piece(block, index, _PIECES[kind], delta[_PIECES[kind]])
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]
            return
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta["citation"])
            return
        else:
            self._fail()  # a delta we cannot replay faithfully
            return
        self._next = (delta_frame_prefix(index, kind), parts)

    def _piece(self, block: Json, index: int, field: str, piece: Any) -> list[str]:
        """Keep `piece` of the block's text or thinking; the pieces it is in.

        As `block[field] += piece` would, a field or piece that is not a
        string is an error (TypeError).
        """
        parts = self._pieces.get((index, field))
        if parts is None:
            if type(block.setdefault(field, "")) is not str:
                raise TypeError(f"{field} is not a string")
            parts = self._pieces[index, field] = []
        if type(piece) is not str:
            raise TypeError(f"{field} is not a string")
        parts.append(piece)
        return parts

    def _stop(self, index: int) -> None:
        parts = self._json.pop(index, None)
        joined = "".join(parts or ())
        if joined:
            self._blocks[index]["input"] = orjson.loads(joined)

    @staticmethod
    def _message_delta(message: Json, data: Json) -> None:
        delta = data.get("delta") or {}
        message["stop_reason"] = delta.get("stop_reason")
        message["stop_sequence"] = delta.get("stop_sequence")
        if isinstance(data.get("usage"), dict):
            message["usage"] = {**(message.get("usage") or {}), **data["usage"]}


_CR = 0x0D
_CARRY_LIMIT = 64 * 1024
_PINGS = (b'{"type":"ping"}', b'{"type": "ping"}')
# Deltas whose strings join into a field of the block; tool input is kept apart (`_json`).
_PIECES = {"text_delta": "text", "thinking_delta": "thinking"}


class JSONRecorder:
    """Collects a non-streaming answer's body; `result()` is the message, or None."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.failed = False
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        """Keep `chunk` (up to `limit` bytes in all)."""
        self._size += len(chunk)
        if self._size > self.limit:
            self.failed = True
            self._chunks.clear()
        if not self.failed:
            self._chunks.append(chunk)

    def result(self) -> Json | None:
        """The body, if it is a whole Anthropic message."""
        if self.failed:
            return None
        try:
            message = orjson.loads(b"".join(self._chunks))
        except orjson.JSONDecodeError:
            return None
        if not isinstance(message, dict) or message.get("type") != "message":
            return None
        return message if isinstance(message.get("content"), list) else None


def storable(message: Json, *, truncated_ok: bool = False) -> bool:
    """Whether a complete answer may be stored: it ended normally (or by a limit, if allowed)."""
    stop = message.get("stop_reason")
    return stop in CACHEABLE_STOPS or (truncated_ok and stop in TRUNCATED_STOPS)


def hit_message(stored: Json) -> Json:
    """The answer for a cache hit: a fresh message id; the whole prompt counted as cache reads.

    B.1: the total prompt is `input + cache_creation + cache_read`; on a hit
    nothing was sent to a model, so it is all reported as
    `cache_read_input_tokens` with `input_tokens` 0, and `output_tokens`
    as stored (the size of the answer served).
    """
    usage = stored.get("usage") or {}
    prompt = sum(
        _int(usage.get(field))
        for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return {
        **stored,
        "id": new_id("msg_"),
        "usage": {
            "input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": prompt,
            "output_tokens": _int(usage.get("output_tokens")),
        },
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
