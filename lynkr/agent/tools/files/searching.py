"""`lynkr_file_glob` and `lynkr_file_grep`, and what they may show under the policy.

Semantics follow Claude Code's `Glob` and `Grep`:

- glob: `pattern` with `*`, `?`, `**` (a pattern without `/` matches a name at
  any depth), files only, `.git` skipped, symlinks not followed;
- grep: a regular expression; ripgrep (`rg`) when on the tools' PATH (which
  honours .gitignore), else a Python scan (files ≤ 5 MiB, binary skipped); the
  output is `path:line:text` either way.

A search reads files, so grep shows only the files the policy lets
`lynkr_file_read` open (`readable_by_policy`, which git's diff applies too).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, cast

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    display_path,
    is_protected,
    object_schema,
    resolve_path,
)
from lynkr.agent.tools.files.reading import SNIFF_BYTES, open_regular
from lynkr.agent.tools.files.spec import PATH, file_spec
from lynkr.agent.tools.shell import run_process
from lynkr.policy import Policy, Workspace, evaluate_tool_call
from lynkr.policy import ToolContext as PolicyContext
from lynkr.policy.globs import glob_matches

__all__ = ["GlobTool", "GrepTool", "readable_by_policy", "readable_paths"]

MAX_GREP_FILE_BYTES = 5 * 1024 * 1024


def _walk(base: Path, context: ToolContext) -> Iterator[Path]:
    """Every file below `base`, sorted, without following symlinks, skipping `.git` and
    lynkr's own files (they are not there, as far as a tool can tell)."""
    for directory, subdirs, files in os.walk(base, followlinks=False):
        subdirs[:] = sorted(
            d for d in subdirs if d != ".git" and not is_protected(context, Path(directory, d))
        )
        for name in sorted(files):
            path = Path(directory, name)
            if not is_protected(context, path):
                yield path


def _glob(base: Path, pattern: str, limit: int, context: ToolContext) -> str:
    found: list[str] = []
    for path in _walk(base, context):
        relative = path.relative_to(base).as_posix()
        if glob_matches([pattern], relative):
            if len(found) == limit:
                return "\n".join(found) + f"\n[… more than {limit} matches; narrow the pattern]"
            found.append(display_path(context, path))
    return "\n".join(found) if found else f"no files match {pattern!r}"


# One line of ripgrep's output: path, line number, text.
_HIT = re.compile(r"^[^\n]+?:\d+:")


class _Searcher(Protocol):
    def search(self, text: str) -> object: ...


def linear_regex(pattern: str, case_insensitive: bool) -> _Searcher:
    """`pattern` compiled by RE2, whose time is linear in the text whatever the pattern.

    Python's `re` backtracks: `(a|a)*$` on a 30-character line takes seconds
    (holding the GIL: the whole server). RE2 has no backreferences or
    lookaround; such a pattern is refused with a message saying so.
    """
    import re2  # type: ignore[import-untyped]  # no stubs; the two calls are checked here

    options = re2.Options()
    options.case_sensitive = not case_insensitive
    options.log_errors = False
    try:
        return cast(_Searcher, re2.compile(pattern, options))
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ToolError(
            f"invalid regular expression: {detail}. Patterns run on a linear-time engine "
            "(RE2): no backreferences (\\1) or lookaround ((?=…), (?<=…)); rewrite it "
            "without them"
        ) from exc


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
    base: Path, regex: _Searcher, file_glob: str | None, limit: int, context: ToolContext
) -> list[str]:
    hits: list[str] = []
    paths = [base] if base.is_file() else _walk(base, context)
    for path in paths:
        if path.is_symlink() or (file_glob and not glob_matches([file_glob], path.name)):
            continue
        for number, line in _matching_lines(path, regex):
            hits.append(f"{display_path(context, path)}:{number}:{line[:300]}")
            if len(hits) > limit:
                return hits
    return hits


def _matching_lines(path: Path, regex: _Searcher) -> Iterator[tuple[int, str]]:
    """Lines of a regular, single-link file of at most MAX_GREP_FILE_BYTES that match.

    Opened without blocking and judged on the descriptor: a FIFO would block the
    worker thread for ever, a device would never end.
    """
    try:
        fd = open_regular(path, os.O_RDONLY)
    except ToolError:
        return
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_GREP_FILE_BYTES + 1)
    if len(data) > MAX_GREP_FILE_BYTES:
        return
    if b"\x00" in data[:SNIFF_BYTES]:
        return
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if regex.search(line):
            yield number, line


def _plain_hits(hits: list[str], context: ToolContext) -> list[str]:
    """The hits in regular files with one name: ripgrep reads hard links to files
    outside the workspace like any file, so each matching file is checked once."""
    verdicts: dict[str, bool] = {}
    kept = []
    for hit in hits:
        name = hit.split(":", 1)[0]
        if name not in verdicts:
            try:
                info = os.lstat(context.workspace / name)
            except OSError:
                verdicts[name] = False
            else:
                verdicts[name] = stat.S_ISREG(info.st_mode) and info.st_nlink <= 1
        if verdicts[name]:
            kept.append(hit)
    return kept


# ── the tools ────────────────────────────────────────────────────────────────


class GlobTool:
    """`lynkr_file_glob`."""

    spec = file_spec(
        "lynkr_file_glob",
        "file.list",
        "List files in the workspace whose path matches a glob: `*` and `?` within a name, "
        "`**` across directories; a pattern without `/` matches file names at any depth "
        "(`*.py`). Paths are relative to the workspace root, sorted; `.git` is skipped.",
        object_schema(
            {
                "pattern": {**PATH, "description": "Glob, e.g. `src/**/*.ts` or `*.md`."},
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

    spec = file_spec(
        "lynkr_file_grep",
        "file.search",
        "Search file contents in the workspace with a regular expression. Returns "
        "`path:line:text` per matching line. `glob` filters file names (`*.py`); `path` "
        "limits the search to a directory or file. Binary files are skipped.",
        object_schema(
            {
                "pattern": {**PATH, "description": "A regular expression."},
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
        if not base.is_dir():
            os.close(open_regular(base, os.O_RDONLY))  # a FIFO would block the search for ever
        limit = int(arguments.get("limit", 200))
        rg = shutil.which("rg", path=context.env.get("PATH", "")) if self.use_ripgrep else None
        if rg:
            hits = await self._ripgrep(rg, base, arguments, limit, context)
        else:
            hits = await self._python(base, arguments, limit, context)
        # A search reads files: the ones the policy would not let lynkr_file_read open
        # (.env, keys…) must not show through it either.
        hits = await asyncio.to_thread(_plain_hits, hits, context)
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
        regex = linear_regex(arguments["pattern"], bool(arguments.get("case_insensitive")))
        glob = arguments.get("glob")
        return await asyncio.to_thread(_grep_python, base, regex, glob, limit, context)

    async def _ripgrep(
        self, rg: str, base: Path, arguments: dict[str, Any], limit: int, context: ToolContext
    ) -> list[str]:
        argv = [rg, "--no-config", "--line-number", "--no-heading", "--with-filename"]
        argv += ["--color=never", "--no-follow", "--max-columns=300", "--max-columns-preview"]
        argv.append("--no-messages")  # unreadable files (lynkr's own, in the sandbox) are skipped
        if arguments.get("case_insensitive"):
            argv.append("--ignore-case")
        if arguments.get("glob"):
            argv += ["--glob", arguments["glob"]]
        argv += ["--regexp", arguments["pattern"], "--", display_path(context, base)]
        result = await run_process(
            argv,
            cwd=context.workspace,
            env=context.env,
            timeout=30,
            max_output_bytes=1 << 20,
            sandbox=context.sandbox,
        )
        lines = [line.removeprefix("./") for line in result.output.splitlines() if line]
        # 2 is also "matches found, some file could not be read": hits are still hits.
        partial = result.exit_code == 2 and lines and all(_HIT.match(line) for line in lines)
        if result.exit_code not in (0, 1) and not partial:
            raise ToolError(f"search failed: {result.output.strip()[:500]}")
        hidden = [display_path(context, own) for own in context.protected]
        return [line for line in lines if not line.startswith(tuple(hidden))][: limit + 1]
