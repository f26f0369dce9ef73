"""Recording answers as they pass, and turning a stored answer into a hit (pure).

`StreamRecorder` is fed the bytes of an Anthropic SSE stream chunk by chunk
(the caller forwards each chunk first, so recording never delays the
client) and assembles the message the events describe (docs/protocol.md B.1
"Streaming grammar") with `lynkr.protocol.accumulate`: text from
`text_delta`s, a tool_use `input` from its joined `input_json_delta`s,
thinking with its `signature_delta`, citations; blocks that arrive whole
(redacted thinking, server tool results) as sent. It yields a message only
for a stream that reached `message_stop` without an `error` event, an
unknown delta, or unparsable tool input (the accumulator's `STRICT` rules).

`JSONRecorder` does the same for a non-streaming answer.

`storable` says which complete answers may be stored, `hit_message` turns a
stored one into the answer for a hit: a fresh id, and usage reporting the
whole prompt as cache reads.
"""

from __future__ import annotations

from typing import Any

import orjson

from lynkr.protocol.accumulate import STRICT, MessageAccumulator
from lynkr.protocol.frames import FrameTooLarge
from lynkr.protocol.openai_response import new_id

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


class StreamRecorder:
    """Assembles a message from SSE bytes; `result()` is it, or None if incomplete or broken.

    The message is `MessageAccumulator`'s under its `STRICT` rules: a stream
    that a replay could not reproduce faithfully is not stored. Past `limit`
    bytes of stream (or of one unfinished frame) the recorder gives up (the
    answer could not be stored anyway) and holds and reads nothing more.
    """

    __slots__ = ("_message", "_scan", "limit", "seen")

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.seen = 0
        self._message = MessageAccumulator(STRICT, max_frame=limit)
        self._scan = self._message.feed

    @property
    def failed(self) -> bool:
        return self._message.failed

    @property
    def finished(self) -> bool:
        return self._message.finished

    def feed(self, chunk: bytes) -> None:
        """Decode `chunk` and apply its events."""
        self.seen += len(chunk)
        if self.seen > self.limit:
            self._message.fail()
            return
        try:
            self._scan(chunk)
        except FrameTooLarge:
            self._message.fail()

    def result(self) -> Json | None:
        """The assembled message, if the stream completed cleanly."""
        return self._message.result()


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
