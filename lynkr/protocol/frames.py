"""Reading an Anthropic SSE stream frame by frame, cheaply for the frames Anthropic sends.

Every answer lynkr relays is looked at on its way out (the cache recorder, the
policy on returned tool calls, session assembly, the tool loop), so the one
reader they share is written for the common frames. `FrameScanner` is fed the
chunks of a stream and hands each frame — its event name, its data, and the
exact bytes it came in — to its `frame` method, with exactly `SSEDecoder`'s
rules (WHATWG) for any stream cut anywhere: the same frames, completed by the
same chunks. An observer subclasses it and overrides `frame` (as
`html.parser.HTMLParser` is used): the scanner then holds no callback of the
observer, so the two make no reference cycle and an answer's state is freed
the moment its request ends, not when the cyclic collector next runs.

How it gets there cheaply:

- While the stream has only `\\n` line ends and it is between frames, the
  bytes are split on blank lines and each frame that is one `event: …` line
  and one `data: …` line (`plain_frame`) is read by hand; the bytes after the
  last blank line wait for the next chunk (a chunk that is one such frame is
  read without being split). From the first frame that is not
  (a comment, `\\r`, several `data:` lines, no space after a colon…) the
  `SSEDecoder` reads, until it is between frames again. So does a frame still
  unfinished after 64 KiB: its pieces wait in the decoder's list instead of
  being copied with every chunk (quadratic on a huge frame).
- The continuing delta (`follow`): an observer that has just read a
  `text_delta`, `thinking_delta` or `input_json_delta` names the bytes the next
  delta of that block starts with, in Anthropic's compact JSON
  (`delta_frame_prefix`), and a list; a frame that is exactly that prefix, one
  JSON string and the closing braces has only its string parsed, appended to
  the list (and its bytes to a second list, for an observer that holds them),
  and never reaches `frame`.
- Runs passed unread (`pass_unless`): an observer that only cares about frames
  that could name something (the policy: `tool_use`) gets a run of finished
  frames whose bytes hold neither that name nor a `\\u` escape (which could
  spell it) back from `feed` as one piece of bytes, unsplit.

`max_frame` caps the bytes held for a frame not yet finished (with any comment
lines before it): past it `feed` raises `FrameTooLarge`, so an upstream's
unterminated line cannot grow memory without bound. `frame` is called
synchronously, frame by frame, so what it does (following a new block, ending
the stream) takes effect from the very next frame.
"""

from __future__ import annotations

import sys

import orjson

from lynkr.errors import UpstreamError
from lynkr.protocol.sse import SSEDecoder

__all__ = ["FrameScanner", "FrameTooLarge", "delta_string", "json_string", "plain_frame"]

_CR = 0x0D
_LF = 0x0A
_BACKSLASH = 0x5C
# A frame unfinished after this many bytes waits in the decoder, not in `_carry`.
_BY_HAND = 64 * 1024
# `_pending` of a closed scanner: every `feed` after is a no-op.
_CLOSED = -1
# The pieces while nothing is followed (never appended to: no prefix matches then).
_NOWHERE: list[str] = []


class FrameTooLarge(UpstreamError):
    """The stream held more than `max_frame` bytes without finishing a frame."""


class FrameScanner:
    """Frames of an SSE stream to `frame`, as `SSEDecoder` reads them (see the module docstring).

    `feed()` each chunk as it arrives, `flush()` at the end of the stream
    (only a lone `\\r` ending the stream can still finish a frame there).
    After `frame` asks to stop, or `close()`, or `FrameTooLarge`, the
    scanner holds nothing and reads nothing more.
    """

    __slots__ = (
        "_carry",
        "_decoder",
        "_max",
        "_needle",
        "_pending",
        "_pieces",
        "_prefix",
        "_raws",
    )

    def __init__(self, *, max_frame: int | None = None) -> None:
        self._max = sys.maxsize if max_frame is None else max_frame
        self._carry = b""  # the unfinished last frame, while frames are cut by hand
        self._decoder: SSEDecoder | None = None  # made on first need
        self._pending = 0  # bytes given to the decoder and not yet back in frames
        self._prefix: bytes | None = None  # how the followed block's next delta starts
        self._pieces: list[str] = _NOWHERE
        self._raws: list[bytes] | None = None
        self._needle: bytes | None = None

    def follow(
        self, prefix: bytes | None, pieces: list[str] | None = None, raws: list[bytes] | None = None
    ) -> None:
        """From the next frame on, read a frame that is `prefix` (`delta_frame_prefix`), one
        JSON string and `}}` by its bytes: its string goes to `pieces` (its bytes to `raws`)
        instead of to `frame`. None stops following.
        """
        self._prefix = prefix
        self._pieces = _NOWHERE if pieces is None else pieces
        self._raws = raws

    def pass_unless(self, needle: bytes | None) -> None:
        """From the next chunk on, return runs of finished frames whose bytes hold neither
        `needle` nor a `\\u` escape from `feed`, unread. None: every frame to `frame`.
        """
        self._needle = needle

    def feed(self, chunk: bytes) -> bytes:
        """Read `chunk`; the run of frames passed unread (`pass_unless`), else b"".

        A run is returned only when it is everything the chunk finished: `frame`
        saw nothing of this chunk then.
        """
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        buf = chunk
        if self._pending or self._carry:
            if self._pending:  # inside a frame the decoder reads (or closed: -1)
                if self._pending > 0:
                    self._decode(chunk)
                return b""
            carry, self._carry = self._carry, b""
            if len(carry) >= _BY_HAND:
                self._decode(carry + chunk)
                return b""
            buf = carry + chunk
        elif (
            (prefix := self._prefix) is not None
            and chunk.startswith(prefix)
            and chunk.endswith(b"}}\n\n")
        ):
            # The usual chunk: one whole frame, the next delta of the followed block
            # (`delta_string`, inline: this runs for most frames of most answers).
            string = chunk[len(prefix) : -4]
            if _LF not in string and _CR not in string:
                try:
                    piece = orjson.loads(string)
                except orjson.JSONDecodeError:
                    piece = None
                if type(piece) is str:
                    self._pieces.append(piece)
                    if self._raws is not None:
                        self._raws.append(chunk)
                    return b""
        if _CR in buf:
            self._decode(buf)
            return b""
        needle = self._needle
        if needle is not None:
            end = buf.rfind(b"\n\n") + 2
            # The last frame must have data, or the decoder would keep its bytes for the
            # next one; the rest must fit the cap, or frames read one by one come first.
            if end >= 2 and buf.startswith(b"data:", buf.rfind(_LF, 0, end - 2) + 1):
                if end == len(buf):  # the usual chunk: whole frames, nothing after them
                    if needle not in buf and (_BACKSLASH not in buf or b"\\u" not in buf):
                        return buf
                elif len(buf) - end <= self._max:
                    head = buf[:end]
                    if needle not in head and (_BACKSLASH not in head or b"\\u" not in head):
                        self._carry = buf[end:]
                        return head
        if buf is chunk and chunk.startswith(b"event: "):
            # Another usual chunk: one whole plain frame (`plain_frame`, inline).
            name_end = chunk.find(_LF)
            if (
                chunk.find(_LF, name_end + 1) == len(chunk) - 2
                and chunk[-1] == _LF
                and chunk.startswith(b"data: ", name_end + 1)
            ):
                name = chunk[7:name_end].decode("utf-8", "replace") or None
                if self.frame(name, chunk[name_end + 7 : -2], chunk):
                    self.close()
                return b""
        if buf:
            self._frames(buf)
        return b""

    def flush(self) -> None:
        """End of stream: a frame the decoder held for a trailing `\\r`; the rest is dropped
        (WHATWG: an event the stream ends in the middle of is not dispatched)."""
        self._carry = b""
        if self._pending > 0:
            assert self._decoder is not None
            self._pending = 0
            for name, data, raw in self._decoder.flush():
                if self.frame(name, data, raw):
                    self.close()
                    return

    def frame(self, name: str | None, data: bytes, raw: bytes) -> bool:
        """One frame: its event name (None without one), its data, the bytes it came in.

        What the observer does with it; True stops the scanner (the observer
        has given up on the stream, or ended it). Subclasses override this.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Drop what is held; read nothing more."""
        self._carry = b""
        self._decoder = None
        self._pending = _CLOSED
        self._prefix = self._raws = self._needle = None
        self._pieces = _NOWHERE

    def _frames(self, buf: bytes) -> None:
        """The frames of `buf` (no `\\r` in it, the scanner between frames), cut by hand."""
        frames = buf.split(b"\n\n")
        self._carry = carry = frames.pop()  # no blank line after it yet
        for at, frame in enumerate(frames):
            prefix = self._prefix
            if prefix is not None and frame.startswith(prefix) and frame.endswith(b"}}"):
                piece = json_string(frame[len(prefix) : -2])
                if piece is not None:
                    self._pieces.append(piece)
                    if self._raws is not None:
                        self._raws.append(frame + b"\n\n")
                    continue
            plain = plain_frame(frame)
            if plain is None:
                # Not one `event:` line and one `data:` line: the decoder's full rules.
                self._carry = b""
                self._decode(buf[sum(len(done) + 2 for done in frames[:at]) :])
                return
            if self.frame(plain[0], plain[1], frame + b"\n\n"):
                self.close()
                return
        if len(carry) > self._max:
            self._too_large(len(carry))

    def _decode(self, buf: bytes) -> None:
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = SSEDecoder()
        self._pending += len(buf)
        for name, data, raw in decoder.feed(buf):
            self._pending -= len(raw)
            if self.frame(name, data, raw):
                self.close()
                return
        if self._pending > self._max:
            self._too_large(self._pending)

    def _too_large(self, held: int) -> None:
        limit = self._max
        self.close()
        raise FrameTooLarge(
            f"the upstream's stream held {held} bytes without finishing an event "
            f"(at most {limit} are read)"
        )


def json_string(raw: bytes) -> str | None:
    """`raw` decoded if it is exactly one JSON string on one line, else None."""
    if _LF in raw or _CR in raw:
        return None  # several lines: not the frame it looked like
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is str else None


def delta_string(frame: bytes, prefix: bytes, *, blank_line: bool = False) -> str | None:
    """The string of a delta `frame` that is `prefix` (`delta_frame_prefix`), one JSON
    string, then the two closing braces (and the blank line, with `blank_line`); else None.

    What `FrameScanner.follow` reads, stated once (the scanner makes the same
    check inline, on the hottest path of every stream).
    """
    tail = b"}}\n\n" if blank_line else b"}}"
    if not (frame.startswith(prefix) and frame.endswith(tail)):
        return None
    return json_string(frame[len(prefix) : -len(tail)])


def plain_frame(frame: bytes) -> tuple[str | None, bytes] | None:
    """(event name, data) of a frame (its blank line cut off) that is exactly one
    `event: …` line and one `data: …` line with `\n` line ends, as Anthropic writes them.

    None for any other framing (comments, `id:`, several `data:` lines, no space after
    the colon…): the caller hands the rest of the stream to `SSEDecoder`.
    """
    name_end = frame.find(_LF)
    if (
        not frame.startswith(b"event: ")
        or not frame.startswith(b"data: ", name_end + 1)
        or frame.find(_LF, name_end + 1) >= 0
    ):
        return None
    return frame[7:name_end].decode("utf-8", "replace") or None, frame[name_end + 7 :]
