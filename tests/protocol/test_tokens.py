"""Local input-token estimates (tokens.py, golden case 42)."""

from __future__ import annotations

import base64
import copy
import struct
import zlib
from typing import Any

import pytest

from lynkr.protocol import estimate_input_tokens

from ._golden import load


def png(width: int, height: int) -> str:
    """A real, valid PNG of a single grey colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode()


def gif(width: int, height: int) -> str:
    raw = b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"
    return base64.b64encode(raw).decode()


def jpeg(width: int, height: int) -> str:
    """SOI, an APP0 segment and an EXIF-sized APP1 to walk past, then the SOF0 header."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    app1 = b"\xff\xe1" + struct.pack(">H", 5002) + b"\x00" * 5000
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return base64.b64encode(b"\xff\xd8" + app0 + app1 + sof0 + b"\xff\xd9").decode()


def webp(kind: bytes, width: int, height: int) -> str:
    if kind == b"VP8X":
        payload = (
            b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        )
    elif kind == b"VP8L":
        bits = (width - 1) | (height - 1) << 14
        payload = b"\x2f" + bits.to_bytes(4, "little")
    else:
        payload = b"\x00" * 3 + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    body = b"WEBP" + kind + struct.pack("<I", len(payload)) + payload
    return base64.b64encode(b"RIFF" + struct.pack("<I", len(body)) + body).decode()


def image(data: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def with_blocks(*blocks: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": list(blocks)}]}


def block_tokens(block: Any) -> int:
    return estimate_input_tokens(with_blocks(block)) - estimate_input_tokens(with_blocks())


def test_golden_case_42() -> None:
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "foo"}], "tools": []}
    tokens = estimate_input_tokens(body)
    assert isinstance(tokens, int) and tokens > 0


def test_empty_body_is_still_positive() -> None:
    assert estimate_input_tokens({}) == 1


def test_text_is_four_characters_per_token() -> None:
    assert block_tokens({"type": "text", "text": "x" * 400}) == 100
    assert block_tokens({"type": "text", "text": "x" * 401}) == 101


def claude_code_body() -> dict[str, Any]:
    body: dict[str, Any] = load("case48.json")["input"]["body"]
    return body


@pytest.mark.parametrize(
    "grow",
    [
        lambda b: b["system"].append({"type": "text", "text": "more rules"}),
        lambda b: b.update(system=" ".join(x["text"] for x in b["system"]) + " and more"),
        lambda b: b["messages"].append({"role": "user", "content": "and another thing"}),
        lambda b: b["messages"][2]["content"].append({"type": "thinking", "thinking": "hmm"}),
        lambda b: b["messages"][2]["content"][2]["input"].update(timeout=5000),
        lambda b: b["messages"][3]["content"][0].update(
            content=[{"type": "text", "text": "x" * 99}]
        ),
        lambda b: b["tools"].append({"name": "Read", "description": "read", "input_schema": {}}),
        lambda b: b["tools"][0].update(description=b["tools"][0]["description"] + " Really."),
        lambda b: b["tools"].append({"type": "web_search_20250305", "name": "web_search"}),
        lambda b: b["messages"][0]["content"].append(image(png(64, 64))),
        lambda b: b["messages"][0]["content"].append({"type": "future_block", "x": 1}),
    ],
)
def test_monotonic(grow: Any) -> None:
    body = claude_code_body()
    bigger = copy.deepcopy(body)
    grow(bigger)
    assert estimate_input_tokens(bigger) > estimate_input_tokens(body)


def test_tools_add_the_tool_use_system_prompt() -> None:
    tool = {"name": "T", "input_schema": {}}
    body = with_blocks({"type": "text", "text": "hi"})
    assert estimate_input_tokens({**body, "tools": [tool]}) - estimate_input_tokens(body) > 346


@pytest.mark.parametrize(
    ("data", "tokens"),
    [
        (png(100, 50), 7),  # 5000 / 750 = 6.7
        (png(1, 1), 1),
        (png(3000, 1000), 1093),  # scaled to 1568 x 522.7
        (png(4000, 4000), 1600),  # capped
        (gif(300, 200), 80),
        (jpeg(750, 100), 100),
        (webp(b"VP8X", 750, 200), 200),
        (webp(b"VP8L", 750, 300), 300),
        (webp(b"VP8 ", 750, 10), 10),
        ("not base64 at all!", 1600),
        (base64.b64encode(b"BM not a supported format").decode(), 1600),
        ("", 1600),
    ],
)
def test_image_tokens_from_the_header(data: str, tokens: int) -> None:
    assert block_tokens(image(data)) == tokens


def test_image_without_inline_data_counts_the_cap() -> None:
    url = {"type": "url", "url": "https://x/y.png"}
    assert block_tokens({"type": "image", "source": url}) == 1600


def test_image_inside_a_tool_result() -> None:
    result = {"type": "tool_result", "tool_use_id": "t", "content": [image(png(150, 100))]}
    assert block_tokens(result) == 20


def test_documents() -> None:
    pdf = base64.b64encode(b"%PDF-1.7" + b"\x00" * 100_000).decode()
    source = {"type": "base64", "media_type": "application/pdf", "data": pdf}
    assert block_tokens({"type": "document", "source": source}) == 3 * 3500
    text = {"type": "text", "media_type": "text/plain", "data": "x" * 4000}
    assert block_tokens({"type": "document", "source": text}) == 1000
    url = {"type": "url", "url": "https://x/doc.pdf"}
    assert block_tokens({"type": "document", "source": url}) == 3500
