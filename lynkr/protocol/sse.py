"""Incremental decoders for the two streaming framings lynkr reads, and the SSE encoder.

`SSEDecoder` follows the WHATWG "event stream interpretation" (HTML §9.2.6)
with the details the upstreams in docs/protocol.md B.2 and B.9 need: chunks
may split anywhere (even inside a `\\r\\n`), lines may end in `\\n`, `\\r\\n`
or `\\r`, `:` lines are comments or keep-alives (B.2: OpenRouter's
`: OPENROUTER PROCESSING`), a space after the field colon is optional, several
`data:` lines join with `\\n`, and `id`/`retry` are ignored (no client here
reconnects). Each event keeps the exact bytes it was decoded from, so a relay
can forward it untouched. `SSEDataDecoder` reads the same grammar but returns
only each event's data, for the OpenAI-style streams whose event names and
bytes nobody needs (B.2).

`NDJSONDecoder` reads Ollama's `application/x-ndjson` stream (B.6): one JSON
object per line, lines split anywhere, blank lines skipped.

These run once per event of every stream, so they are written for speed: a
chunk is scanned with `bytes.find`/`split` (the regex only when it holds a
`\\r`), and the bytes of an unfinished line wait as pieces, joined once when
the line ends, so an event spread over many chunks is never copied per chunk.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import orjson

from lynkr.errors import UpstreamError

__all__ = [
    "NDJSONDecoder",
    "SSEDataDecoder",
    "SSEDecoder",
    "SSEEvent",
    "delta_frame_prefix",
    "encode_event",
]

# One line terminator: CRLF, a lone CR or a lone LF (WHATWG: "end-of-line").
_EOL = re.compile(rb"\r\n?|\n")
# Single bytes as ints: `13 in chunk` is a memchr, several times faster than `b"\r" in chunk`.
_CR = 0x0D
_LF = 0x0A
_COLON = 0x3A


class SSEEvent(NamedTuple):
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

    __slots__ = ("_data", "_event", "_read", "_tail")

    def __init__(self) -> None:
        self._tail: list[bytes] = []  # the unfinished last line, in the pieces it came in
        # Bytes of the lines read since the last event; empty, no field of the next one is set.
        self._read: list[bytes] = []
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode `chunk`; return the events it completed (possibly none)."""
        if not chunk:
            return []
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        tail = self._tail
        if tail:
            tail.append(chunk)
            if tail[-2][-1] != _CR and _LF not in chunk and _CR not in chunk:
                return []  # the line goes on
            chunk = b"".join(tail)
            self._tail = []
        elif not self._read and chunk.startswith(b"event: ") and _CR not in chunk:
            # The usual chunk of an Anthropic stream: one whole `event: …\ndata: …\n\n`.
            name_end = chunk.find(_LF)
            data_end = chunk.find(_LF, name_end + 1)
            if (
                data_end == len(chunk) - 2
                and chunk[-1] == _LF
                and chunk.startswith(b"data: ", name_end + 1)
            ):
                name = chunk[7:name_end].decode("utf-8", "replace") or None
                return [SSEEvent(name, chunk[name_end + 7 : data_end], chunk)]
        return self._parse(chunk, final=False)

    def flush(self) -> list[SSEEvent]:
        """End of stream: settle a held trailing `\\r`.

        An event without its terminating blank line is discarded, as WHATWG
        requires ("If the file ends in the middle of an event … the incomplete
        event is not dispatched").
        """
        events = self._parse(b"".join(self._tail), final=True) if self._tail else []
        self._tail, self._read = [], []
        self._event, self._data = None, []
        return events

    def _parse(self, buf: bytes, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        pos = start = 0  # the next line; the first byte of the next event's raw
        if _CR not in buf:
            # Only `\n` line ends: the common case, scanned with `find`.
            find = buf.find
            while (end := find(_LF, pos)) >= 0:
                if end != pos:
                    if buf.startswith(b"data: ", pos):
                        self._data.append(buf[pos + 6 : end])
                    else:
                        self._field(buf[pos:end])
                elif self._data:
                    events.append(self._dispatch(buf[start : end + 1]))
                    start = end + 1
                else:
                    self._event = None  # WHATWG: a block without data dispatches nothing
                pos = end + 1
        else:
            while (match := _EOL.search(buf, pos)) is not None:
                end = match.end()
                if not final and end == len(buf) and buf[-1] == _CR:
                    break  # may still become `\r\n`: the line waits for the next byte
                if match.start() != pos:
                    self._field(buf[pos : match.start()])
                elif self._data:
                    events.append(self._dispatch(buf[start:end]))
                    start = end
                else:
                    self._event = None
                pos = end
        if start < pos:
            self._read.append(buf[start:pos])
        if pos < len(buf):
            self._tail.append(buf[pos:])
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
        if self._read:
            self._read.append(raw)
            raw = b"".join(self._read)
            self._read = []
        event = SSEEvent(self._event, b"\n".join(self._data), raw)
        self._event, self._data = None, []
        return event


class SSEDataDecoder:
    """The `data` of each SSE event, nothing else: `SSEDecoder`'s grammar, for less work.

    For any stream cut anywhere, `feed()` returns the `data` of the events
    `SSEDecoder` returns from its `feed()` and `flush()`. Line ends are made
    `\\n` as chunks arrive: a `\\r` ending a chunk ends its line at once (so no
    event waits for the next chunk), and a `\\n` starting the next chunk is
    then dropped as the second half of a `\\r\\n`. Nothing is held at the end
    of a stream: an event without its blank line is never dispatched (WHATWG).
    """

    __slots__ = ("_after_cr", "_data", "_tail")

    def __init__(self) -> None:
        self._tail: list[bytes] = []  # the unfinished last line, in the pieces it came in
        self._data: list[bytes] = []  # the `data:` values of the event being read
        self._after_cr = False  # the last chunk ended in `\r`

    def feed(self, chunk: bytes) -> list[bytes]:
        """Decode `chunk`; return the data of the events it completed (possibly none)."""
        if (
            chunk.startswith(b"data: ")
            and chunk.find(_LF) == len(chunk) - 2
            and chunk[-1] == _LF
            and _CR not in chunk
            and not (self._tail or self._data or self._after_cr)
        ):
            return [chunk[6:-2]]  # the usual chunk: exactly one event, `data: …\n\n`
        if not chunk:
            return []
        if self._after_cr:
            self._after_cr = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
        if _CR in chunk:
            self._after_cr = chunk[-1] == _CR
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if _LF not in chunk:
            if chunk:
                self._tail.append(chunk)
            return []
        if self._tail:
            self._tail.append(chunk)
            chunk = b"".join(self._tail)
            self._tail = []
        lines = chunk.split(b"\n")
        if lines[-1]:
            self._tail.append(lines[-1])
        del lines[-1]
        found: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    found.append(b"\n".join(data))
                    data = self._data = []
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line == b"data":
                data.append(b"")
        return found


def encode_event(name: str, data: bytes) -> bytes:
    """One Anthropic SSE frame, `event: NAME\\ndata: DATA\\n\\n` (B.1 "Streaming grammar").

    Data holding line breaks (never compact JSON) is split over several
    `data:` lines, which a decoder joins back with `\\n`.
    """
    if _LF in data or _CR in data:
        data = b"\ndata: ".join(_EOL.split(data))
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


class NDJSONDecoder:
    """Incremental newline-delimited JSON decoder (Ollama `/api/chat`, B.6).

    A line that is not JSON raises `UpstreamError`: the upstream broke the
    framing, and the caller turns that into an `error` event.
    """

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail: list[bytes] = []  # the unfinished last line, in the pieces it came in

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode `chunk`; return the objects of the lines it completed."""
        cut = chunk.rfind(b"\n")
        if (
            cut == len(chunk) - 1
            and chunk[:1] == b"{"
            and not self._tail
            and chunk.find(_LF) == cut
        ):
            return [_loads(chunk[:cut])]  # the usual chunk: exactly one object and its `\n`
        if cut < 0:
            if chunk:
                self._tail.append(bytes(chunk))
            return []
        if self._tail:
            self._tail.append(bytes(chunk))
            chunk = b"".join(self._tail)
            cut += len(chunk) - len(self._tail[-1])
            self._tail = []
        if cut + 1 < len(chunk):
            self._tail.append(bytes(chunk[cut + 1 :]))
        return [_loads(line) for line in chunk[:cut].split(b"\n") if line.strip()]

    def flush(self) -> list[Any]:
        """End of stream: decode a last line that had no terminating newline."""
        line = b"".join(self._tail)
        self._tail = []
        return [_loads(line)] if line.strip() else []


def _loads(line: bytes | bytearray) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        shown = bytes(line[:200]).decode("utf-8", "replace")
        raise UpstreamError(f"upstream sent a stream line that is not JSON: {shown!r}") from exc


# --------------------------------------------------------------------------- delta frame heads

# The string field each Anthropic delta kind carries.
_DELTA_FIELDS = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}


def delta_frame_prefix(index: int, kind: str) -> bytes:
    """The bytes an Anthropic `content_block_delta` frame of `kind` at `index` starts with,
    up to its string, exactly as Anthropic (and lynkr's translators) write it.

    `FrameScanner.follow` matches the next delta of a block against it and
    parses only its string; any other spelling of the same event reaches the
    observer as a frame.
    """
    head = f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":{index},'
    return f'{head}"delta":{{"type":"{kind}","{_DELTA_FIELDS[kind]}":'.encode()
