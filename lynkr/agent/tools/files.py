"""The files family: read, write, edit, glob, grep, and an edit history with revert.

Semantics follow Claude Code's own tools, so a model that knows `Read`,
`Write` and `Edit` knows these:

- read: `file_path`, 1-based `offset` line and `limit` lines (2000 by
  default), output numbered like `cat -n`; lines over 2000 characters are cut;
  at most 96 kB of text per call, with a note saying where to read on; PNG,
  JPEG, GIF and WebP come back as an image block (≤ 5 MiB); other binary files
  as a one-line description;
- write: whole content, parents created;
- edit: `old_string` must occur exactly once unless `replace_all`; an empty
  `old_string` creates a file that does not exist yet;
- glob: `pattern` with `*`, `?`, `**` (a pattern without `/` matches a name at
  any depth), files only, `.git` skipped, symlinks not followed;
- grep: a regular expression; ripgrep (`rg`) when on the tools' PATH (which
  honours .gitignore), else a Python scan (files ≤ 5 MiB, binary skipped); the
  output is `path:line:text` either way.

Every write and edit is recorded (content before and after, up to 10 MiB) in
the tool store (`lynkr.stores.tools`); `lynkr_file_history` lists them and `lynkr_file_revert`
restores the content before an edit, refusing when the file changed since.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    display_path,
    object_schema,
    resolve_path,
)
from lynkr.agent.tools.shell import run_process
from lynkr.policy import Policy, Workspace, evaluate_tool_call
from lynkr.policy import ToolContext as PolicyContext
from lynkr.policy.globs import glob_matches
from lynkr.stores.tools import EditRecord

__all__ = [
    "EditFileTool",
    "FileHistoryTool",
    "GlobTool",
    "GrepTool",
    "ReadFileTool",
    "RevertEditTool",
    "WriteFileTool",
    "file_tools",
]

DEFAULT_LINES = 2000
MAX_LINE_CHARS = 2000
MAX_READ_BYTES = 96_000  # under the registry's 100 000-character cap, with one long line
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_WRITE_BYTES = 10 * 1024 * 1024
MAX_GREP_FILE_BYTES = 5 * 1024 * 1024
_SNIFF = 8192
_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

# ── reading ──────────────────────────────────────────────────────────────────


def _open_regular(path: Path, flags: int) -> int:
    """Open without following a final symlink or blocking on a FIFO; refuse non-files."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise ToolError("file does not exist") from exc
    except IsADirectoryError as exc:
        raise ToolError("is a directory (use lynkr_file_glob to list it)") from exc
    except OSError as exc:
        raise ToolError(f"cannot open the file: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ToolError("is a directory (use lynkr_file_glob to list it)")
        raise ToolError("not a regular file (a device, socket or pipe)")
    return fd


def _image_type(head: bytes) -> str | None:
    for magic, media_type in _IMAGES:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _read(path: Path, offset: int, limit: int) -> ToolResult:
    fd = _open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(_SNIFF)
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


def _numbered_lines(handle: Any, offset: int, limit: int) -> str:
    lines: list[str] = []
    used = 0
    number = 0
    for number, raw in enumerate(handle, start=1):
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
    fd = _open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(MAX_WRITE_BYTES + 1)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except IsADirectoryError as exc:
        raise ToolError("is a directory") from exc
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


# ── listing and searching ────────────────────────────────────────────────────


def _walk(base: Path) -> Iterator[Path]:
    """Every file below `base`, sorted, without following symlinks, skipping `.git`."""
    for directory, subdirs, files in os.walk(base, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if d != ".git")
        for name in sorted(files):
            yield Path(directory, name)


def _glob(base: Path, pattern: str, limit: int, context: ToolContext) -> str:
    found: list[str] = []
    for path in _walk(base):
        relative = path.relative_to(base).as_posix()
        if glob_matches([pattern], relative):
            if len(found) == limit:
                return "\n".join(found) + f"\n[… more than {limit} matches; narrow the pattern]"
            found.append(display_path(context, path))
    return "\n".join(found) if found else f"no files match {pattern!r}"


# A repeated group that itself ends in a repetition: (a*)*, (x+)+, (?:a|b*)+, (a*){2,}.
_NESTED_QUANTIFIER = re.compile(r"[*+}]\)[*+{]|[*+}]\)\?[*+{]")


def readable_by_policy(context: ToolContext, path: str) -> bool:
    """Whether the policy lets `path` be read (no policy: the workspace rules already held).

    Reads the disk (symlinks on the way): call it from a worker thread, as git's
    tools do, or through `readable_paths` from the event loop.
    """
    if not isinstance(context.policy, Policy):
        return True
    policy_context = PolicyContext(workspace=Workspace(root=str(context.workspace)))
    decision = evaluate_tool_call(
        context.policy, "lynkr_file_read", {"file_path": path}, policy_context
    )
    return bool(decision.allowed)


async def readable_paths(context: ToolContext, paths: set[str]) -> set[str]:
    """The `paths` the policy lets be read, judged together in one worker thread."""
    if not isinstance(context.policy, Policy):
        return paths
    return await asyncio.to_thread(lambda: {p for p in paths if readable_by_policy(context, p)})


def _grep_python(
    base: Path, regex: re.Pattern[str], file_glob: str | None, limit: int, context: ToolContext
) -> list[str]:
    hits: list[str] = []
    paths = [base] if base.is_file() else _walk(base)
    for path in paths:
        if path.is_symlink() or (file_glob and not glob_matches([file_glob], path.name)):
            continue
        for number, line in _matching_lines(path, regex):
            hits.append(f"{display_path(context, path)}:{number}:{line[:300]}")
            if len(hits) > limit:
                return hits
    return hits


def _matching_lines(path: Path, regex: re.Pattern[str]) -> Iterator[tuple[int, str]]:
    try:
        if path.stat().st_size > MAX_GREP_FILE_BYTES:
            return
        data = path.read_bytes()
    except OSError:
        return
    if b"\x00" in data[:_SNIFF]:
        return
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if regex.search(line):
            yield number, line


# ── the tools ────────────────────────────────────────────────────────────────

_PATH = {"type": "string", "minLength": 1}


def _spec(name: str, canonical: str, description: str, schema: dict[str, Any]) -> ToolSpec:
    return ToolSpec(name, description, schema, "files", canonical)


class ReadFileTool:
    """`lynkr_file_read`."""

    spec = _spec(
        "lynkr_file_read",
        "file.read",
        "Read a file in the workspace. Returns lines numbered like `cat -n`, from `offset` "
        f"(1-based line, default 1) for `limit` lines (default {DEFAULT_LINES}); long lines "
        "and long outputs are cut with a note saying where to read on. PNG/JPEG/GIF/WebP "
        "images come back as images; other binary files are described, not shown.",
        object_schema(
            {
                "file_path": {**_PATH, "description": "Path, relative to the workspace root."},
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


class WriteFileTool:
    """`lynkr_file_write`."""

    spec = _spec(
        "lynkr_file_write",
        "file.write",
        "Write a file in the workspace with the given content, replacing it if it exists and "
        "creating missing parent directories. Prefer lynkr_file_edit to change part of an "
        "existing file. Recorded in the edit history (lynkr_file_revert undoes it).",
        object_schema(
            {
                "file_path": {**_PATH, "description": "Path, relative to the workspace root."},
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
        await asyncio.to_thread(_write, path, data)
        edit_id = await _record(context, path, "write", before, data)
        verb = "created" if before is None else "overwrote"
        shown = display_path(context, path)
        return ToolResult(f"{verb} {shown} ({len(data)} bytes); edit id {edit_id}")


class EditFileTool:
    """`lynkr_file_edit`."""

    spec = _spec(
        "lynkr_file_edit",
        "file.edit",
        "Edit a file by exact string replacement. `old_string` must occur exactly once "
        "(include enough surrounding lines to make it unique) unless `replace_all` is true. "
        "An empty `old_string` creates a new file with `new_string`. Recorded in the edit "
        "history (lynkr_file_revert undoes it).",
        object_schema(
            {
                "file_path": {**_PATH, "description": "Path, relative to the workspace root."},
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
        data = content.encode("utf-8")
        await asyncio.to_thread(_write, path, data)
        edit_id = await _record(context, path, "edit", before, data)
        shown = display_path(context, path)
        return ToolResult(f"edited {shown}: {count} replacement(s); edit id {edit_id}")


class GlobTool:
    """`lynkr_file_glob`."""

    spec = _spec(
        "lynkr_file_glob",
        "file.list",
        "List files in the workspace whose path matches a glob: `*` and `?` within a name, "
        "`**` across directories; a pattern without `/` matches file names at any depth "
        "(`*.py`). Paths are relative to the workspace root, sorted; `.git` is skipped.",
        object_schema(
            {
                "pattern": {**_PATH, "description": "Glob, e.g. `src/**/*.ts` or `*.md`."},
                "path": {"type": "string", "description": "Directory to search (default: root)."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
            },
            ("pattern",),
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        base = resolve_path(context, arguments.get("path") or ".")
        if not base.is_dir():
            raise ToolError(f"path {arguments.get('path')!r} is not a directory")
        limit = int(arguments.get("limit", 500))
        return ToolResult(
            await asyncio.to_thread(_glob, base, arguments["pattern"], limit, context)
        )


class GrepTool:
    """`lynkr_file_grep`."""

    def __init__(self, *, use_ripgrep: bool = True) -> None:
        self.use_ripgrep = use_ripgrep

    spec = _spec(
        "lynkr_file_grep",
        "file.search",
        "Search file contents in the workspace with a regular expression. Returns "
        "`path:line:text` per matching line. `glob` filters file names (`*.py`); `path` "
        "limits the search to a directory or file. Binary files are skipped.",
        object_schema(
            {
                "pattern": {**_PATH, "description": "A regular expression."},
                "path": {"type": "string", "description": "File or directory (default: root)."},
                "glob": {"type": "string", "description": "Only files whose name matches."},
                "case_insensitive": {"type": "boolean"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 2000},
            },
            ("pattern",),
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        base = resolve_path(context, arguments.get("path") or ".")
        if not base.exists():
            raise ToolError(f"path {arguments.get('path')!r} does not exist")
        limit = int(arguments.get("limit", 200))
        rg = shutil.which("rg", path=context.env.get("PATH", "")) if self.use_ripgrep else None
        if rg:
            hits = await self._ripgrep(rg, base, arguments, limit, context)
        else:
            hits = await self._python(base, arguments, limit, context)
        # A search reads files: the ones the policy would not let lynkr_file_read open
        # (.env, keys…) must not show through it either.
        paths = {hit.split(":", 1)[0] for hit in hits}  # each file judged once, not per match
        readable = await readable_paths(context, paths)
        hits = [hit for hit in hits if hit.split(":", 1)[0] in readable]
        if not hits:
            return ToolResult(f"no matches for {arguments['pattern']!r}")
        more = f"\n[… more than {limit} matches; narrow the search]" if len(hits) > limit else ""
        return ToolResult("\n".join(hits[:limit]) + more)

    async def _python(
        self, base: Path, arguments: dict[str, Any], limit: int, context: ToolContext
    ) -> list[str]:
        flags = re.IGNORECASE if arguments.get("case_insensitive") else 0
        if _NESTED_QUANTIFIER.search(arguments["pattern"]):
            # Python's re would backtrack for ever, holding the GIL (the whole server).
            raise ToolError(
                "this pattern nests repetitions (like (a*)* or (a+)+), which can take forever "
                "without ripgrep; rewrite it without a repeated group"
            )
        try:
            regex = re.compile(arguments["pattern"], flags)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from exc
        glob = arguments.get("glob")
        return await asyncio.to_thread(_grep_python, base, regex, glob, limit, context)

    async def _ripgrep(
        self, rg: str, base: Path, arguments: dict[str, Any], limit: int, context: ToolContext
    ) -> list[str]:
        argv = [rg, "--no-config", "--line-number", "--no-heading", "--with-filename"]
        argv += ["--color=never", "--no-follow", "--max-columns=300", "--max-columns-preview"]
        if arguments.get("case_insensitive"):
            argv.append("--ignore-case")
        if arguments.get("glob"):
            argv += ["--glob", arguments["glob"]]
        argv += ["--regexp", arguments["pattern"], "--", display_path(context, base)]
        result = await run_process(
            argv, cwd=context.workspace, env=context.env, timeout=30, max_output_bytes=1 << 20
        )
        if result.exit_code not in (0, 1):
            raise ToolError(f"search failed: {result.output.strip()[:500]}")
        lines = [line.removeprefix("./") for line in result.output.splitlines() if line]
        return lines[: limit + 1]


class FileHistoryTool:
    """`lynkr_file_history`."""

    spec = _spec(
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
    spec = _spec(
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


def file_tools() -> list[Any]:
    """The files family, in the order the model sees them."""
    return [
        ReadFileTool(),
        WriteFileTool(),
        EditFileTool(),
        GlobTool(),
        GrepTool(),
        FileHistoryTool(),
        RevertEditTool(),
    ]
