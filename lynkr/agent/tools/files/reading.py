"""`lynkr_file_read`, and `open_regular`, the guarded open it shares with writing.

Semantics follow Claude Code's `Read`: `file_path`, 1-based `offset` line and
`limit` lines (2000 by default), output numbered like `cat -n`; lines over
2000 characters are cut; at most 96 kB of text per call, with a note saying
where to read on; PNG, JPEG, GIF and WebP come back as an image block
(≤ 5 MiB); other binary files as a one-line description.

`open_regular` also reads the content a write or edit replaces: it never
follows a final symlink nor blocks on a FIFO, and refuses anything but a
regular file. `SNIFF_BYTES` is how much of a file's head tells an image or a
binary file, here and in grep's Python scan.
"""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lynkr.agent.tools.base import ToolContext, ToolError, ToolResult, object_schema, resolve_path
from lynkr.agent.tools.files.spec import PATH, file_spec

__all__ = [
    "SNIFF_BYTES",
    "ReadFileTool",
    "open_regular",
    "refuse_unless_plain",
]

DEFAULT_LINES = 2000
MAX_LINE_CHARS = 2000
# Bytes read of one line: enough for MAX_LINE_CHARS characters of UTF-8 and then some.
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS + 4
MAX_READ_BYTES = 96_000  # under the registry's 100 000-character cap, with one long line
MAX_IMAGE_BYTES = 5 * 1024 * 1024
SNIFF_BYTES = 8192
_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def open_regular(path: Path, flags: int) -> int:
    """Open without following a final symlink or blocking on a FIFO; refuse non-files."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise ToolError("file does not exist") from exc
    except IsADirectoryError as exc:
        raise ToolError("is a directory (use lynkr_file_glob to list it)") from exc
    except OSError as exc:
        raise ToolError(f"cannot open the file: {exc.strerror}") from exc
    refuse_unless_plain(fd)
    return fd


def refuse_unless_plain(fd: int) -> None:
    """Close `fd` and refuse unless it is a regular file with one name.

    A second hard link may be a file outside the workspace linked in: `O_NOFOLLOW`
    stops symlinks, not links, so the link count is checked on the open file.
    """
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_nlink <= 1:
        return
    os.close(fd)
    if stat.S_ISDIR(info.st_mode):
        raise ToolError("is a directory (use lynkr_file_glob to list it)")
    if not stat.S_ISREG(info.st_mode):
        raise ToolError("not a regular file (a device, socket or pipe)")
    raise ToolError(
        "the file has other hard links (it may be a file outside the workspace linked "
        "in); tools refuse it. Copy it to a new file if you need its content"
    )


def _image_type(head: bytes) -> str | None:
    for magic, media_type in _IMAGES:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _read(path: Path, offset: int, limit: int) -> ToolResult:
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(SNIFF_BYTES)
        media_type = _image_type(head)
        if media_type:
            return _image(handle, head, size, media_type)
        if b"\x00" in head:
            return ToolResult(f"binary file ({size} bytes); not shown as text")
        handle.seek(0)
        return ToolResult(_numbered_lines(handle, offset, limit))


def _image(handle: Any, head: bytes, size: int, media_type: str) -> ToolResult:
    if size > MAX_IMAGE_BYTES:
        return ToolResult(f"{media_type} image of {size} bytes; too large to show (max 5 MiB)")
    data = head + handle.read(MAX_IMAGE_BYTES)
    return ToolResult(
        [
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": media_type,
                    "data": base64.b64encode(data).decode("ascii"),
                },
            }
        ]
    )


def _bounded_lines(handle: Any) -> Iterator[bytes]:
    """The file's lines, each at most MAX_LINE_BYTES: the rest of a longer line is read
    in pieces of that size and dropped, so one endless line never sits in memory."""
    while raw := handle.readline(MAX_LINE_BYTES):
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
        yield raw


def _numbered_lines(handle: Any, offset: int, limit: int) -> str:
    lines: list[str] = []
    used = 0
    number = 0
    for number, raw in enumerate(_bounded_lines(handle), start=1):
        if number < offset:
            continue
        if len(lines) >= limit or used >= MAX_READ_BYTES:
            return "\n".join(lines) + f"\n[… the file goes on; read on with offset={number}]"
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " [… line cut]"
        lines.append(f"{number:6}\t{text}")
        used += len(text) + 8
    if not lines:
        return "(the file is empty)" if number == 0 else f"(the file has only {number} lines)"
    return "\n".join(lines)


class ReadFileTool:
    """`lynkr_file_read`."""

    spec = file_spec(
        "lynkr_file_read",
        "file.read",
        "Read a file in the workspace. Returns lines numbered like `cat -n`, from `offset` "
        f"(1-based line, default 1) for `limit` lines (default {DEFAULT_LINES}); long lines "
        "and long outputs are cut with a note saying where to read on. PNG/JPEG/GIF/WebP "
        "images come back as images; other binary files are described, not shown.",
        object_schema(
            {
                "file_path": {**PATH, "description": "Path, relative to the workspace root."},
                "offset": {"type": "integer", "minimum": 1, "description": "First line (1-based)."},
                "limit": {"type": "integer", "minimum": 1, "description": "How many lines."},
            },
            ("file_path",),
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["file_path"])
        offset = int(arguments.get("offset", 1))
        limit = int(arguments.get("limit", DEFAULT_LINES))
        return await asyncio.to_thread(_read, path, offset, limit)
