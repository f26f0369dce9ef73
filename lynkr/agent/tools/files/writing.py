"""`lynkr_file_write` and `lynkr_file_edit`, and the edit history that can undo them.

Semantics follow Claude Code's `Write` and `Edit`:

- write: whole content, parents created;
- edit: `old_string` must occur exactly once unless `replace_all`; an empty
  `old_string` creates a file that does not exist yet.

Every write and edit is recorded (content before and after, up to 10 MiB) in
the tool store (`lynkr.stores.tools`); `lynkr_file_history` lists them and `lynkr_file_revert`
restores the content before an edit, refusing when the file changed since.
One module, because recording is part of every write and a revert is a write.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    display_path,
    object_schema,
    resolve_path,
)
from lynkr.agent.tools.files.reading import open_regular, refuse_unless_plain
from lynkr.agent.tools.files.spec import PATH, file_spec
from lynkr.stores.tools import EditRecord

__all__ = ["EditFileTool", "FileHistoryTool", "RevertEditTool", "WriteFileTool"]

MAX_WRITE_BYTES = 10 * 1024 * 1024

# ── the edit history ─────────────────────────────────────────────────────────


async def _record(
    context: ToolContext, path: Path, action: str, before: bytes | None, after: bytes | None
) -> int:
    """Store one edit; returns its id. Contents over 10 MiB are not kept (not revertible)."""
    keep = all(c is None or len(c) <= MAX_WRITE_BYTES for c in (before, after))
    return await context.store.add_edit(
        str(context.workspace),
        context.session_id,
        path=str(path),
        action=action,
        before=before if keep else None,
        after=after if keep else None,
        revertible=keep,
    )


async def _edit_by_id(context: ToolContext, edit_id: int) -> EditRecord:
    edit = await context.store.edit(str(context.workspace), edit_id)
    if edit is None:
        raise ToolError(f"no edit {edit_id} in this workspace (see lynkr_file_history)")
    return edit


# ── writing ──────────────────────────────────────────────────────────────────


def _current(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    if not os.path.lexists(path):
        return None
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(MAX_WRITE_BYTES + 1)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not O_TRUNC: the file is judged on its open descriptor first (a hard link to a
    # file outside, a FIFO), and only then emptied.
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except IsADirectoryError as exc:
        raise ToolError("is a directory") from exc
    except OSError as exc:
        raise ToolError(f"cannot open the file for writing: {exc.strerror}") from exc
    refuse_unless_plain(fd)
    os.ftruncate(fd, 0)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _delete(path: Path) -> None:
    if os.path.lexists(path):
        path.unlink()


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError("not a UTF-8 text file; it cannot be edited by string replacement") from exc


def _replace(content: str, old: str, new: str, replace_all: bool) -> tuple[str, int]:
    """Claude Code's Edit: `old` must be present, and unique unless `replace_all`."""
    if old == new:
        raise ToolError("old_string and new_string are the same; nothing to change")
    count = content.count(old)
    if count == 0:
        raise ToolError(
            "old_string was not found in the file; read the file and copy the text exactly, "
            "including whitespace and indentation"
        )
    if count > 1 and not replace_all:
        raise ToolError(
            f"old_string occurs {count} times; add surrounding lines to make it unique, "
            "or pass replace_all: true to replace every occurrence"
        )
    return content.replace(old, new), count


# ── the tools ────────────────────────────────────────────────────────────────


class WriteFileTool:
    """`lynkr_file_write`."""

    spec = file_spec(
        "lynkr_file_write",
        "file.write",
        "Write a file in the workspace with the given content, replacing it if it exists and "
        "creating missing parent directories. Prefer lynkr_file_edit to change part of an "
        "existing file. Recorded in the edit history (lynkr_file_revert undoes it).",
        object_schema(
            {
                "file_path": {**PATH, "description": "Path, relative to the workspace root."},
                "content": {"type": "string", "description": "The whole new content."},
            },
            ("file_path", "content"),
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["file_path"], write=True)
        data = arguments["content"].encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise ToolError("content is larger than 10 MiB; write it in smaller files")
        before = await asyncio.to_thread(_current, path)
        shown, edit_id = await _written(context, path, "write", before, data)
        verb = "created" if before is None else "overwrote"
        return ToolResult(f"{verb} {shown} ({len(data)} bytes); edit id {edit_id}")


async def _written(
    context: ToolContext, path: Path, action: str, before: bytes | None, data: bytes
) -> tuple[str, int]:
    """Write `data` to `path` and record the edit: (the path as shown, the edit's id)."""
    await asyncio.to_thread(_write, path, data)
    edit_id = await _record(context, path, action, before, data)
    return display_path(context, path), edit_id


class EditFileTool:
    """`lynkr_file_edit`."""

    spec = file_spec(
        "lynkr_file_edit",
        "file.edit",
        "Edit a file by exact string replacement. `old_string` must occur exactly once "
        "(include enough surrounding lines to make it unique) unless `replace_all` is true. "
        "An empty `old_string` creates a new file with `new_string`. Recorded in the edit "
        "history (lynkr_file_revert undoes it).",
        object_schema(
            {
                "file_path": {**PATH, "description": "Path, relative to the workspace root."},
                "old_string": {"type": "string", "description": "The exact text to replace."},
                "new_string": {"type": "string", "description": "The text to put instead."},
                "replace_all": {"type": "boolean", "description": "Replace every occurrence."},
            },
            ("file_path", "old_string", "new_string"),
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["file_path"], write=True)
        old, new = arguments["old_string"], arguments["new_string"]
        before = await asyncio.to_thread(_current, path)
        if before is None and old:
            raise ToolError("file does not exist (use an empty old_string to create it)")
        if before is not None and len(before) > MAX_WRITE_BYTES:
            raise ToolError("file is larger than 10 MiB; it cannot be edited here")
        if before is not None and not old and before:
            raise ToolError("old_string is empty but the file exists and is not empty")
        if before is None or (not before and not old):
            content, count = new, 1
        else:
            content, count = _replace(_text(before), old, new, bool(arguments.get("replace_all")))
        shown, edit_id = await _written(context, path, "edit", before, content.encode("utf-8"))
        return ToolResult(f"edited {shown}: {count} replacement(s); edit id {edit_id}")


class FileHistoryTool:
    """`lynkr_file_history`."""

    spec = file_spec(
        "lynkr_file_history",
        "file.history",
        "List the recorded writes and edits in this workspace, newest first (id, time, "
        "action, path, size), optionally for one file. Use an id with lynkr_file_revert.",
        object_schema(
            {
                "file_path": {"type": "string", "description": "Only this file."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            }
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        given = arguments.get("file_path")
        path = resolve_path(context, given) if given else None
        limit = int(arguments.get("limit", 20))
        shown = str(path) if path is not None else None
        edits = await context.store.edits(str(context.workspace), shown, limit)
        if not edits:
            return ToolResult("no recorded edits")
        return ToolResult("\n".join(_history_line(edit, context) for edit in edits))


def _history_line(edit: EditRecord, context: ToolContext) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(edit.at))
    size = "deleted" if edit.after is None else f"{len(edit.after)} bytes"
    note = "" if edit.revertible else " (too large to revert)"
    return f"#{edit.id} {when} {edit.action} {display_path(context, Path(edit.path))} {size}{note}"


class RevertEditTool:
    """`lynkr_file_revert`."""

    # The policy judges a revert as an edit of the file it rewrites (a write).
    spec = file_spec(
        "lynkr_file_revert",
        "file.edit",
        "Undo one recorded write or edit: put back the file's content from before it (or "
        "delete a file it created). Refused when the file changed since that edit unless "
        "`force` is true; revert later edits first. The revert is recorded too.",
        object_schema(
            {
                "edit_id": {"type": "integer", "minimum": 1},
                "force": {"type": "boolean", "description": "Revert even if the file changed."},
            },
            ("edit_id",),
        ),
    )

    async def policy_input(self, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        """What the policy checks: the file the revert would write."""
        edit = await _edit_by_id(context, int(arguments["edit_id"]))
        return {**arguments, "file_path": edit.path}

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        edit = await _edit_by_id(context, int(arguments["edit_id"]))
        if not edit.revertible:
            raise ToolError(f"edit {edit.id} was too large to record; it cannot be reverted")
        path = resolve_path(context, edit.path, write=True)
        current = await asyncio.to_thread(_current, path)
        if current != edit.after and not arguments.get("force"):
            raise ToolError(
                f"the file changed after edit {edit.id}; revert the later edits first "
                "(lynkr_file_history), or pass force: true"
            )
        if edit.before is None:
            await asyncio.to_thread(_delete, path)
        else:
            await asyncio.to_thread(_write, path, edit.before)
        revert_id = await _record(context, path, f"revert {edit.id}", current, edit.before)
        shown = display_path(context, path)
        return ToolResult(f"reverted edit {edit.id} on {shown}; edit id {revert_id}")
