"""The tasks family: a small task tracker in SQLite (create, list, update, delete).

Tasks belong to the workspace (not to a session, so a plan survives the
conversation); the session that created a task is kept for the record.
Statuses: `todo`, `in_progress`, `blocked`, `done`, `cancelled`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    in_database,
    object_schema,
)

__all__ = ["STATUSES", "task_tools"]

STATUSES = ("todo", "in_progress", "blocked", "done", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    session_id TEXT,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tool_tasks_workspace ON tool_tasks (workspace, status);
"""
_COLUMNS = "id, title, description, status, created, updated"
_TITLE = {"type": "string", "minLength": 1, "maxLength": 500}
_DESCRIPTION = {"type": "string", "maxLength": 10_000}
_STATUS = {"enum": list(STATUSES)}
_ID = {"type": "integer", "minimum": 1}


@dataclass(frozen=True, slots=True)
class _Task:
    id: int
    title: str
    description: str
    status: str
    created: float
    updated: float

    def line(self) -> str:
        text = f"#{self.id} [{self.status}] {self.title}"
        return text + (f" — {self.description}" if self.description else "")


def _row(row: tuple[Any, ...]) -> _Task:
    return _Task(*row)


async def _one(context: ToolContext, task_id: int) -> _Task:
    def select(db: sqlite3.Connection) -> tuple[Any, ...] | None:
        query = f"SELECT {_COLUMNS} FROM tool_tasks WHERE id = ? AND workspace = ?"
        result: tuple[Any, ...] | None = db.execute(
            query, (task_id, str(context.workspace))
        ).fetchone()
        return result

    row = await in_database(context.data_dir, _SCHEMA, select)
    if row is None:
        raise ToolError(f"no task {task_id} in this workspace (lynkr_tasks_list shows them)")
    return _row(row)


def _spec(action: str, description: str, schema: dict[str, Any]) -> ToolSpec:
    return ToolSpec(f"lynkr_tasks_{action}", description, schema, "tasks", f"tasks.{action}")


class _Create:
    spec = _spec(
        "create",
        "Add a task to this workspace's task list (status todo unless given).",
        object_schema(
            {"title": _TITLE, "description": _DESCRIPTION, "status": _STATUS}, ("title",)
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        now = time.time()
        row = (
            str(context.workspace),
            context.session_id,
            arguments["title"],
            arguments.get("description", ""),
            arguments.get("status", "todo"),
            now,
            now,
        )

        def insert(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO tool_tasks (workspace, session_id, title, description, status,"
                " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)

        task_id = await in_database(context.data_dir, _SCHEMA, insert)
        return ToolResult(f"created task #{task_id}")


class _List:
    spec = _spec(
        "list",
        "List this workspace's tasks, oldest first, optionally only those with one status.",
        object_schema(
            {"status": _STATUS, "limit": {"type": "integer", "minimum": 1, "maximum": 500}}
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        status = arguments.get("status")
        query = f"SELECT {_COLUMNS} FROM tool_tasks WHERE workspace = ?"
        query += (" AND status = ?" if status else "") + " ORDER BY id LIMIT ?"
        params = (
            str(context.workspace),
            *((status,) if status else ()),
            arguments.get("limit", 100),
        )

        def select(db: sqlite3.Connection) -> list[_Task]:
            return [_row(r) for r in db.execute(query, params)]

        tasks = await in_database(context.data_dir, _SCHEMA, select)
        return ToolResult("\n".join(t.line() for t in tasks) or "no tasks")


class _Update:
    spec = _spec(
        "update",
        "Change a task's status, title or description.",
        object_schema(
            {"id": _ID, "status": _STATUS, "title": _TITLE, "description": _DESCRIPTION}, ("id",)
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        task = await _one(context, arguments["id"])
        changes = {k: arguments[k] for k in ("status", "title", "description") if k in arguments}
        if not changes:
            raise ToolError("give at least one of status, title, description to change")
        assignments = ", ".join(f"{column} = ?" for column in changes)  # fixed column names

        def update(db: sqlite3.Connection) -> None:
            db.execute(
                f"UPDATE tool_tasks SET {assignments}, updated = ? WHERE id = ?",
                (*changes.values(), time.time(), task.id),
            )

        await in_database(context.data_dir, _SCHEMA, update)
        return ToolResult((await _one(context, task.id)).line())


class _Delete:
    spec = _spec(
        "delete",
        "Delete a task (prefer status done or cancelled to keep the record).",
        object_schema({"id": _ID}, ("id",)),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        task = await _one(context, arguments["id"])

        def delete(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM tool_tasks WHERE id = ?", (task.id,))

        await in_database(context.data_dir, _SCHEMA, delete)
        return ToolResult(f"deleted task #{task.id} ({task.title})")


def task_tools() -> list[Any]:
    """The tasks family."""
    return [_Create(), _List(), _Update(), _Delete()]
