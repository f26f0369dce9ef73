"""Incremental decoders for the two streaming framings lynkr reads, and the SSE encoder.

`SSEDecoder` follows the WHATWG "event stream interpretation" (HTML §9.2.6)
with the details the upstreams in PROTOCOL.md need: chunks may split anywhere
(even inside a `\\r\\n`), lines may end in `\\n`, `\\r\\n` or `\\r`, `:` lines
are comments or keep-alives (B.2: OpenRouter's `: OPENROUTER PROCESSING`), a
space after the field colon is optional, several `data:` lines join with
`\\n`, and `id`/`retry` are ignored (no client here reconnects). Each event
keeps the exact bytes it was decoded from, so a relay can forward it untouched.

`NDJSONDecoder` reads Ollama's `application/x-ndjson` stream (B.6): one JSON
object per line, lines split anywhere, blank lines skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from lynkr.errors import UpstreamError

__all__ = ["NDJSONDecoder", "SSEDecoder", "SSEEvent", "encode_event"]

# One line terminator: CRLF, a lone CR or a lone LF (WHATWG: "end-of-line").
_EOL = re.compile(rb"\r\n?|\n")
_CR = 0x0D
_COLON = 0x3A


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched SSE event.

    `event` is the value of the last `event:` line, or None when the frame had
    none (OpenAI-style streams, B.2). `data` is the `data:` lines joined with
    `\\n`. `raw` is every byte consumed for this event: its own lines, its
    terminating blank line, and any comment-only or data-less blocks just
    before it, so the concatenated `raw` of all events reproduces the stream.
    """

    event: str | None
    data: bytes
    raw: bytes


class SSEDecoder:
    """Incremental SSE decoder: `feed()` bytes as they arrive, `flush()` at end of stream.

    A `\\r` at the very end of a chunk is held until the next byte shows
    whether it starts a `\\r\\n`, so `raw` is always exact; for a stream that
    uses lone `\\r` line endings this delays an event by at most one chunk.
    """

    __slots__ = ("_buf", "_data", "_event", "_line_at", "_scan_at")

    def __init__(self) -> None:
        self._buf = bytearray()  # bytes of the event being read, from its first byte
        self._line_at = 0  # where the first unfinished line starts in _buf
        self._scan_at = 0  # no line terminator exists in _buf[_line_at:_scan_at]
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode `chunk`; return the events it completed (possibly none)."""
        self._buf += chunk
        return self._parse(final=False)

    def flush(self) -> list[SSEEvent]:
        """End of stream: settle a held trailing `\\r`.

        An event without its terminating blank line is discarded, as WHATWG
        requires ("If the file ends in the middle of an event … the incomplete
        event is not dispatched").
        """
        events = self._parse(final=True)
        self._buf.clear()
        self._line_at = self._scan_at = 0
        self._event, self._data = None, []
        return events

    def _parse(self, *, final: bool) -> list[SSEEvent]:
        buf, events = self._buf, []
        pos, start = self._line_at, 0
        while (match := _EOL.search(buf, max(pos, self._scan_at))) is not None:
            end = match.end()
            if not final and end == len(buf) and buf[-1] == _CR:
                self._scan_at = match.start()  # may still become `\r\n`
                break
            line = bytes(buf[pos : match.start()])
            pos = end
            if line:
                self._field(line)
            elif self._data:
                events.append(self._dispatch(bytes(buf[start:pos])))
                start = pos
            else:
                self._event = None  # WHATWG: a block without data dispatches nothing
        else:
            self._scan_at = len(buf)
        del buf[:start]
        self._line_at = pos - start
        self._scan_at -= start
        return events

    def _field(self, line: bytes) -> None:
        if line[0] == _COLON:
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace") or None

    def _dispatch(self, raw: bytes) -> SSEEvent:
        event = SSEEvent(self._event, b"\n".join(self._data), raw)
        self._event, self._data = None, []
        return event


def encode_event(name: str, data: bytes) -> bytes:
    """One Anthropic SSE frame, `event: NAME\\ndata: DATA\\n\\n` (B.1 "Streaming grammar").

    Data holding line breaks (never compact JSON) is split over several
    `data:` lines, which a decoder joins back with `\\n`.
    """
    if b"\n" in data or b"\r" in data:
        data = b"\ndata: ".join(_EOL.split(data))
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


class NDJSONDecoder:
    """Incremental newline-delimited JSON decoder (Ollama `/api/chat`, B.6).

    A line that is not JSON raises `UpstreamError`: the upstream broke the
    framing, and the caller turns that into an `error` event.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode `chunk`; return the objects of the lines it completed."""
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._buf += chunk
            return []
        self._buf += chunk[:cut]
        lines, self._buf = self._buf, bytearray(chunk[cut + 1 :])
        return [_loads(line) for line in lines.split(b"\n") if line.strip()]

    def flush(self) -> list[Any]:
        """End of stream: decode a last line that had no terminating newline."""
        line, self._buf = self._buf, bytearray()
        return [_loads(line)] if line.strip() else []


def _loads(line: bytes | bytearray) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        shown = bytes(line[:200]).decode("utf-8", "replace")
        raise UpstreamError(f"upstream sent a stream line that is not JSON: {shown!r}") from exc
