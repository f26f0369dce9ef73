"""A local estimate of a Messages request's input tokens.

Used for `POST /v1/messages/count_tokens` (docs/protocol.md B.1, golden case
42) when the upstream has no counting endpoint, and for routing by request
size. It is an estimate, not a tokenizer: it should be in the right range and
fast, and it errs slightly high rather than low.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["estimate_input_tokens"]

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3  # role and turn markers around each message
# Anthropic's published size of the tool-use system prompt it adds when tools are present.
TOOLS_OVERHEAD = 346
# Anthropic's image rule: tokens ≈ width * height / 750 after the long edge is scaled to at
# most 1568 px; larger images are shrunk to about 1600 tokens. Unknown sizes count as the cap.
IMAGE_PIXELS_PER_TOKEN = 750
IMAGE_MAX_EDGE = 1568
IMAGE_MAX_TOKENS = 1600
# PDFs are sent to the model as text plus an image per page (about 1.5-3k text tokens plus one
# image each); pages are guessed from the file size. A document of unknown size counts as a page.
PDF_PAGE_BYTES = 40_000
PDF_PAGE_TOKENS = 3_500


class _Tally:
    """Characters of text seen, and tokens counted directly (images, documents, overheads)."""

    __slots__ = ("chars", "tokens")

    def __init__(self) -> None:
        self.chars = 0
        self.tokens = 0


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Estimate the input tokens of `body`, a Messages or count_tokens request (always ≥ 1).

    Method: all text is counted as characters and turned into tokens at
    4 characters per token, rounded up. Text is: `system` (a string or text
    blocks); every message's text, thinking and redacted_thinking data,
    tool_use name and compact JSON input, tool_result content (recursively);
    tool definitions' name, description and compact JSON `input_schema`
    (server tools: their whole JSON); and the JSON of any block type not
    known here. Added as tokens: 3 per message, 346 when tools are present
    (Anthropic's tool-use system prompt), images by Anthropic's rule
    (width * height / 750 after scaling the long edge to ≤ 1568 px, at most
    1600; the size read from the PNG, GIF, JPEG or WebP header inside the
    base64 data without decoding the rest; 1600 when unknown), and PDFs at
    3,500 tokens per started 40 KB (text documents count as text).
    """
    tally = _Tally()
    _content(tally, body.get("system"))
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            tally.tokens += MESSAGE_OVERHEAD
            if isinstance(message, dict):
                _content(tally, message.get("content"))
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        tally.tokens += TOOLS_OVERHEAD
        for tool in tools:
            _tool(tally, tool)
    return max(1, -(-tally.chars // CHARS_PER_TOKEN) + tally.tokens)


def _content(tally: _Tally, content: Any) -> None:
    """A `content` or `system` value: a string, a block list, or absent."""
    if isinstance(content, str):
        tally.chars += len(content)
    elif isinstance(content, list):
        for block in content:
            _block(tally, block)


def _block(tally: _Tally, block: Any) -> None:
    kind = block.get("type") if isinstance(block, dict) else None
    counter = _BLOCKS.get(kind) if isinstance(kind, str) else None
    if counter is not None:
        counter(tally, block)
    elif isinstance(kind, str) and kind.endswith("_tool_result"):
        _content(tally, block.get("content"))
    else:
        _json(tally, block)


def _text(tally: _Tally, block: dict[str, Any]) -> None:
    tally.chars += _len(block.get("text"))


def _thinking(tally: _Tally, block: dict[str, Any]) -> None:
    tally.chars += _len(block.get("thinking"))


def _redacted_thinking(tally: _Tally, block: dict[str, Any]) -> None:
    tally.chars += _len(block.get("data"))


def _tool_use(tally: _Tally, block: dict[str, Any]) -> None:
    tally.chars += _len(block.get("name"))
    _json(tally, block.get("input"))


def _tool_result(tally: _Tally, block: dict[str, Any]) -> None:
    _content(tally, block.get("content"))


def _search_result(tally: _Tally, block: dict[str, Any]) -> None:
    tally.chars += _len(block.get("title")) + _len(block.get("source"))
    _content(tally, block.get("content"))


def _image(tally: _Tally, block: dict[str, Any]) -> None:
    source = block.get("source")
    size = None
    if isinstance(source, dict) and source.get("type") == "base64":
        data = source.get("data")
        size = _image_size(data) if isinstance(data, str) else None
    tally.tokens += IMAGE_MAX_TOKENS if size is None else _image_tokens(*size)


def _document(tally: _Tally, block: dict[str, Any]) -> None:
    tally.chars += _len(block.get("title")) + _len(block.get("context"))
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    kind, data = source.get("type"), source.get("data")
    if kind == "text":
        tally.chars += _len(data)
    elif kind == "content":
        _content(tally, source.get("content"))
    elif kind == "base64" and source.get("media_type") != "application/pdf":
        tally.chars += _len(data) * 3 // 4
    else:
        size = _len(data) * 3 // 4 if kind == "base64" else 0
        tally.tokens += max(1, -(-size // PDF_PAGE_BYTES)) * PDF_PAGE_TOKENS


_BLOCKS: dict[str, Callable[[_Tally, dict[str, Any]], None]] = {
    "text": _text,
    "thinking": _thinking,
    "redacted_thinking": _redacted_thinking,
    "tool_use": _tool_use,
    "server_tool_use": _tool_use,
    "mcp_tool_use": _tool_use,
    "tool_result": _tool_result,
    "search_result": _search_result,
    "image": _image,
    "document": _document,
}


def _tool(tally: _Tally, tool: Any) -> None:
    """A tool definition: a client tool's parts, or a server tool's whole JSON (B.1)."""
    if isinstance(tool, dict) and "input_schema" in tool:
        tally.chars += _len(tool.get("name")) + _len(tool.get("description"))
        _json(tally, tool["input_schema"])
    else:
        _json(tally, tool)


def _json(tally: _Tally, value: Any) -> None:
    tally.chars += len(orjson.dumps(value))


def _len(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _image_tokens(width: int, height: int) -> int:
    scale = min(1.0, IMAGE_MAX_EDGE / max(width, height))
    pixels = (width * scale) * (height * scale)
    return max(1, min(IMAGE_MAX_TOKENS, -int(-pixels // IMAGE_PIXELS_PER_TOKEN)))


def _image_size(data: str) -> tuple[int, int] | None:
    """Width and height from the image header at the start of base64 `data`, or None."""
    head = _b64_slice(data, 0, 30)
    size: tuple[int, ...] | None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        size = struct.unpack(">II", head[16:24])
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        size = struct.unpack("<HH", head[6:10])
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        size = _webp_size(head)
    elif head[:2] == b"\xff\xd8":
        size = _jpeg_size(data)
    else:
        return None
    if size is None or not all(0 < edge <= 100_000 for edge in size):
        return None
    return int(size[0]), int(size[1])


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


# JPEG start-of-frame markers carry the size; C4, C8 and CC are other segments.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: str) -> tuple[int, int] | None:
    """Walk the JPEG segments (decoding 9 bytes at each) to the first start-of-frame."""
    offset = 2
    for _ in range(64):  # real files reach SOF within a handful of segments
        segment = _b64_slice(data, offset, 9)
        if len(segment) < 9 or segment[0] != 0xFF:
            return None
        if segment[1] in _JPEG_SOF:
            height, width = struct.unpack(">HH", segment[5:9])
            return width, height
        offset += 2 + int.from_bytes(segment[2:4], "big")
    return None


def _b64_slice(data: str, start: int, length: int) -> bytes:
    """Bytes `start:start+length` of what `data` encodes, decoding only the 4-char groups needed."""
    first = start // 3 * 4
    try:
        decoded = binascii.a2b_base64(data[first : -(-(start + length) // 3) * 4])
    except (binascii.Error, ValueError):
        return b""
    skip = start - first // 4 * 3
    return decoded[skip : skip + length]
