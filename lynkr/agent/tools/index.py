"""The index family: the model asks the repo index (`lynkr.repoindex`) about the workspace.

Symbols by name, references of a name, the definition of the identifier at a
position, a file's outline, and a rebuild. The index is
`<workspace>/.lynkr/index.sqlite3`; each call first brings it up to date, in a
worker thread so the event loop never waits: the files the conversation just
edited (`lynkr.repoindex.dirty`, ~10 ms), or a stat sweep when the last is older
than 30 s (tens of milliseconds on a 7,000-file tree; the first call of a
workspace builds the index whole).
The policy sees `index.symbols`, `index.refs`, `index.definition`,
`index.outline`, `index.map`, `index.rebuild`.
"""

from __future__ import annotations

import asyncio
import re
import time
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

__all__ = ["index_tools"]

_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


def _spec(action: str, description: str, schema: dict[str, Any]) -> ToolSpec:
    return ToolSpec(f"lynkr_index_{action}", description, schema, "index", f"index.{action}")


def _fresh(context: ToolContext) -> Any:
    """The workspace's index, brought up to date (on a worker thread): the files known to
    have changed (`repoindex.dirty`), or a sweep when one is due."""
    from lynkr.repoindex import IndexDB, build, dirty, index_path

    root = context.workspace
    started = time.monotonic()
    plan = dirty.refresh_plan(root, started)
    if plan is None:
        build(root)
        dirty.swept(root, started)
    elif plan:
        build(root, paths=plan)
    return IndexDB(index_path(root))


async def _ask(context: ToolContext, question: Any) -> Any:
    def run() -> Any:
        db = _fresh(context)
        try:
            return question(db)
        finally:
            db.close()

    return await asyncio.to_thread(run)


def _symbol_line(hit: Any) -> str:
    parent = f" (in {hit.parent})" if hit.parent else ""
    doc = f" — {hit.doc}" if hit.doc else ""
    return f"{hit.path}:{hit.line}:{hit.column} {hit.kind} {hit.signature}{parent}{doc}"


class _Symbols:
    spec = _spec(
        "symbols",
        "Find definitions (functions, classes, methods, types…) by name in this workspace: "
        "exact names first, then names starting with the query, then containing it. Faster "
        "and more precise than grep for 'where is X defined'.",
        object_schema(
            {"query": _NAME, "kind": {"type": "string", "maxLength": 40},
             "limit": {"type": "integer", "minimum": 1, "maximum": 200}},
            ("query",),
        ),
    )  # fmt: skip

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        query, kind, limit = arguments["query"], arguments.get("kind"), arguments.get("limit", 20)
        hits = await _ask(context, lambda db: db.symbols(query, kind=kind, limit=limit))
        return ToolResult("\n".join(map(_symbol_line, hits)) or "no definition matches that")


class _Refs:
    spec = _spec(
        "refs",
        "List where a name is used in this workspace (calls, type uses), file:line:column.",
        object_schema({"name": _NAME}, ("name",)),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        hits = await _ask(context, lambda db: db.references(arguments["name"]))
        lines = [f"{h.path}:{h.line}:{h.column} {h.kind} {h.name}" for h in hits]
        return ToolResult("\n".join(lines) or f"no use of {arguments['name']} is indexed")


class _Definition:
    spec = _spec(
        "definition",
        "Go to the definition of the identifier at a position of a file (line and column "
        "1-based): where it is defined, with its signature.",
        object_schema(
            {"path": {"type": "string", "minLength": 1},
             "line": {"type": "integer", "minimum": 1},
             "column": {"type": "integer", "minimum": 1}},
            ("path", "line", "column"),
        ),
    )  # fmt: skip

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["path"])
        name = await asyncio.to_thread(_identifier_at, path, arguments["line"], arguments["column"])
        relative = display_path(context, path)
        hits = await _ask(context, lambda db: db.symbols(name, limit=50))
        exact = [h for h in hits if h.name == name]
        exact.sort(key=lambda h: (h.path != relative, h.path, h.line))  # its own file first
        if not exact:
            return ToolResult(f"no definition of {name} is indexed")
        return ToolResult("\n".join(map(_symbol_line, exact[:10])))


def _identifier_at(path: Path, line: int, column: int) -> str:
    try:
        with path.open("rb") as handle:
            wanted = next((text for number, text in enumerate(handle, 1) if number == line), None)
    except OSError as exc:
        raise ToolError(f"cannot read {path.name}: {exc.strerror}") from None
    if wanted is None:
        raise ToolError(f"{path.name} has fewer than {line} lines")
    decoded = wanted.decode("utf-8", "replace")
    for match in _IDENTIFIER.finditer(decoded):
        if match.start() < column <= match.end() + 1:
            return match.group(0)
    raise ToolError(f"no identifier at line {line}, column {column} of {path.name}")


class _Outline:
    spec = _spec(
        "outline",
        "The definitions of one file in order, with their lines: a table of contents.",
        object_schema({"path": {"type": "string", "minLength": 1}}, ("path",)),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        relative = display_path(context, resolve_path(context, arguments["path"]))
        hits = await _ask(context, lambda db: db.outline(relative))
        return ToolResult("\n".join(map(_symbol_line, hits)) or f"no definitions in {relative}")


class _Map:
    spec = _spec(
        "map",
        "A map of the workspace: its most important definitions (signature lines, grouped by "
        "file), ranked by how the code uses them and by the files or names you focus on, "
        "fitted to a token budget.",
        object_schema(
            {"tokens": {"type": "integer", "minimum": 64, "maximum": 16384},
             "focus": {"type": "array", "items": {"type": "string", "maxLength": 300},
                       "maxItems": 50}}
        ),
    )  # fmt: skip

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        from lynkr.repoindex.repomap import repo_map

        tokens, focus = arguments.get("tokens", 1024), arguments.get("focus", [])
        text = await _ask(context, lambda db: repo_map(db, tokens=tokens, focus=focus))
        return ToolResult(text or "the index holds no definitions yet")


class _Rebuild:
    spec = _spec(
        "rebuild",
        "Bring the workspace's code index up to date now (only what changed is read) and say "
        "what it holds.",
        object_schema({}),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        from lynkr.repoindex import build, dirty

        report = await asyncio.to_thread(build, context.workspace)
        dirty.swept(context.workspace)
        languages = ", ".join(f"{k} {v}" for k, v in report.languages.items()) or "none"
        return ToolResult(
            f"index up to date: {report.files} files ({languages}), {report.symbols} symbols, "
            f"{report.references} references; {report.parsed} parsed, {report.unchanged} "
            f"unchanged, {report.removed} removed in {report.seconds:.2f} s"
        )


def index_tools() -> list[Any]:
    return [_Symbols(), _Refs(), _Definition(), _Outline(), _Map(), _Rebuild()]
