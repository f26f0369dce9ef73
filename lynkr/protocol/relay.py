"""Relay of an Anthropic-format SSE stream to the client (docs/protocol.md B.9).

B.9: "Forward the streaming SSE **unchanged**, apart from the `model` field in
`message_start`." The relay holds bytes only until the first event is
complete, rewrites `message.model` there, and from then on returns every
chunk exactly as received. Along the way it notes, by scanning bytes, whether
the stream finished (`message_stop`) or failed (`event: error`): A.9 shows a
stream lacking the former, or carrying the latter, makes Claude Code retry
without streaming, so the caller needs both facts.

A hostile or broken upstream cannot make the relay slow or large: the bytes
of an unfinished frame are kept as the pieces they came in and only the new
chunk (plus the three bytes before it) is searched for a frame's end, so a
frame cut into n chunks costs O(size), not O(n × size); and a frame (the
first one included) unfinished after `max_frame` bytes raises `FrameTooLarge`,
which ends the answer with an error instead of growing memory.
"""

from __future__ import annotations

import re

import orjson

from lynkr.protocol.frames import FrameTooLarge
from lynkr.protocol.sse import SSEDecoder, SSEEvent, encode_event

__all__ = ["MAX_FRAME", "AnthropicStreamRelay"]

# The most bytes one unfinished frame may hold. Anthropic's frames are a few KB
# (deltas are cut small, `message_start` carries only the message's shell); 16 MiB
# is far past any real one and bounds what a line without an end can cost.
MAX_FRAME = 16 * 1024 * 1024

# An `event:` line naming one of the two events the relay watches. It counts
# only right after a real line break: inside JSON data a break is escaped as
# `\n`, so a quoted "event: error" in model text never counts. (The literal
# prefix lets `re` use its fast substring search; a leading `[\r\n]` in the
# pattern made the scan five times slower.)
_WATCHED = re.compile(rb"event: ?(message_stop|error)[\r\n]")
# Longest match with its line break, minus one: the bytes of one that can
# precede a chunk boundary.
_TAIL = len(b"\nevent: message_stop\n") - 1
_BLANK_LINES = (b"\n\n", b"\r\n\r\n", b"\r\r")
# Bytes of a blank-line mark that can sit before a chunk boundary.
_MARK_TAIL = max(len(mark) for mark in _BLANK_LINES) - 1


class AnthropicStreamRelay:
    """Per-response state machine: `feed()` upstream chunks, send what it returns, then `finish()`.

    After the first event each `feed()` costs one regex scan of the chunk
    plus a few bytes of carry-over, with no JSON parsing and no copy.
    """

    __slots__ = (
        "_decoder",
        "_held",
        "_max_frame",
        "_model",
        "_partial",
        "_partial_size",
        "_tail",
        "completed",
        "errored",
    )

    def __init__(self, model: str | None, *, max_frame: int = MAX_FRAME) -> None:
        self._model = model
        self._max_frame = max_frame
        # Until the first event is out: its decoder and the bytes held back.
        self._decoder: SSEDecoder | None = SSEDecoder() if model is not None else None
        self._held = bytearray()
        # The start of a frame whose end has not arrived yet, in the pieces it came in.
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._tail = b"\n"  # the stream starts at a line start
        self.completed = False  # an `event: message_stop` line was seen
        self.errored = False  # an `event: error` line was seen

    def feed(self, chunk: bytes) -> bytes:
        """Take one upstream chunk; return the bytes to send to the client now.

        Only whole frames are returned: bytes after the chunk's last blank line
        wait for the next chunk, so whatever the client gets next — the rest of
        the frame, or an `event: error` frame if the upstream fails — starts on
        a frame boundary.
        """
        self._scan(chunk)
        if self._decoder is None:
            return self._whole_frames(chunk)
        self._held += chunk
        if len(self._held) > self._max_frame:
            self._too_large()
        # Decode only as far as the first blank line, so a big first chunk (a
        # whole buffered response) is not parsed event by event; the rest stays
        # in `_held` and goes out untouched.
        end = _first_blank_line_end(chunk)
        for piece in (chunk[:end], chunk[end:]) if end else (chunk,):
            events = self._decoder.feed(piece)
            if events:
                return self._release(events)
        return b""

    def finish(self) -> bytes:
        """End of the upstream stream: what is still held back, if it can be sent whole.

        A last frame the upstream did not end with a blank line is completed when
        the stream finished properly; otherwise a partial frame is dropped.
        """
        if self._decoder is not None:
            return self._release(self._decoder.flush())
        partial, self._partial, self._partial_size = b"".join(self._partial), [], 0
        if not partial.strip() or not (self.completed or self.errored):
            return b""
        return partial + (b"\n" if partial.endswith((b"\n", b"\r")) else b"\n\n")

    def _whole_frames(self, chunk: bytes) -> bytes:
        """The frames `chunk` finishes (with the start held before it); the rest is held."""
        partial = self._partial
        if not partial:
            if chunk.endswith(b"\n\n"):
                return chunk  # the common case: no copy
            end = _last_blank_line_end(chunk)
            if end:
                self._hold(chunk[end:])
                return chunk[:end]
            self._hold(chunk)
            return b""
        # The held bytes end no frame: only a mark reaching into `chunk` can.
        before = partial[-1][-_MARK_TAIL:]
        end = _last_blank_line_end(before + chunk) - len(before)
        if end <= 0:
            self._hold(chunk)
            return b""
        partial.append(chunk[:end])
        frames = b"".join(partial)
        self._partial, self._partial_size = [], 0
        self._hold(chunk[end:])
        return frames

    def _hold(self, piece: bytes) -> None:
        if not piece:
            return
        self._partial.append(piece)
        self._partial_size += len(piece)
        if self._partial_size > self._max_frame:
            self._too_large()

    def _too_large(self) -> None:
        self._partial, self._partial_size, self._held = [], 0, bytearray()
        self._decoder = None
        raise FrameTooLarge(
            f"the upstream sent an event longer than {self._max_frame:,} bytes without "
            "ending it; the stream was stopped (a broken or hostile provider)"
        )

    def _release(self, events: list[SSEEvent]) -> bytes:
        held, self._held, self._decoder = bytes(self._held), bytearray(), None
        if not events:
            return held
        first = events[0]
        return self._rewrite(first) + self._whole_frames(held[len(first.raw) :])

    def _rewrite(self, event: SSEEvent) -> bytes:
        """Return `event.raw` with `message.model` replaced, when it is a `message_start`."""
        if event.event != "message_start":
            return event.raw
        try:
            payload = orjson.loads(event.data)
            message = payload["message"]
            if message.get("model") == self._model:
                return event.raw
            message["model"] = self._model
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            return event.raw  # not the shape B.1 promises: forward it as it came
        data = orjson.dumps(payload)
        # The data sits verbatim in `raw` unless it spanned several `data:` lines;
        # then a re-framed event carries the same meaning.
        at = event.raw.rfind(event.data)
        if at < 0:
            return encode_event("message_start", data)
        return event.raw[:at] + data + event.raw[at + len(event.data) :]

    def _scan(self, chunk: bytes) -> None:
        if self.completed and self.errored:
            return
        # Lines across the boundary first (the tail always holds a byte, the
        # stream starting as if after a line break), then the chunk itself.
        self._note(self._tail + chunk[:_TAIL])
        self._note(chunk)
        self._tail = (self._tail + chunk)[-_TAIL:] if len(chunk) < _TAIL else chunk[-_TAIL:]

    def _note(self, data: bytes) -> None:
        for match in _WATCHED.finditer(data):
            at = match.start()
            if at and data[at - 1] in b"\r\n":
                if match[1] == b"message_stop":
                    self.completed = True
                else:
                    self.errored = True


def _first_blank_line_end(chunk: bytes) -> int:
    """Where the first frame-ending blank line of `chunk` ends (0 when there is none)."""
    ends = [at + len(mark) for mark in _BLANK_LINES if (at := chunk.find(mark)) >= 0]
    return min(ends) if ends else 0


def _last_blank_line_end(data: bytes) -> int:
    """Where the last frame-ending blank line of `data` ends (0 when there is none)."""
    return max(
        (at + len(mark) for mark in _BLANK_LINES if (at := data.rfind(mark)) >= 0), default=0
    )
