"""The tasks family: a small task tracker in the tool store (create, list, update, delete).

Tasks belong to the workspace (not to a session, so a plan survives the
conversation); the session that created a task is kept for the record.
Statuses: `todo`, `in_progress`, `blocked`, `done`, `cancelled`.
"""

from __future__ import annotations

from typing import Any

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    object_schema,
)
from lynkr.stores.tools import TaskRecord

__all__ = ["STATUSES", "task_tools"]

STATUSES = ("todo", "in_progress", "blocked", "done", "cancelled")

_TITLE = {"type": "string", "minLength": 1, "maxLength": 500}
_DESCRIPTION = {"type": "string", "maxLength": 10_000}
_STATUS = {"enum": list(STATUSES)}
_ID = {"type": "integer", "minimum": 1}


def _line(task: TaskRecord) -> str:
    text = f"#{task.id} [{task.status}] {task.title}"
    return text + (f" — {task.description}" if task.description else "")


async def _one(context: ToolContext, task_id: int) -> TaskRecord:
    task = await context.store.task(str(context.workspace), task_id)
    if task is None:
        raise ToolError(f"no task {task_id} in this workspace (lynkr_tasks_list shows them)")
    return task


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
        task_id = await context.store.add_task(
            str(context.workspace),
            context.session_id,
            arguments["title"],
            arguments.get("description", ""),
            arguments.get("status", "todo"),
        )
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
        workspace, limit = str(context.workspace), arguments.get("limit", 100)
        tasks = await context.store.tasks(workspace, arguments.get("status"), limit)
        return ToolResult("\n".join(_line(task) for task in tasks) or "no tasks")


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
        changes: dict[str, str] = {
            k: arguments[k] for k in ("status", "title", "description") if k in arguments
        }
        if not changes:
            raise ToolError("give at least one of status, title, description to change")
        await context.store.update_task(str(context.workspace), task.id, changes)
        return ToolResult(_line(await _one(context, task.id)))


class _Delete:
    spec = _spec(
        "delete",
        "Delete a task (prefer status done or cancelled to keep the record).",
        object_schema({"id": _ID}, ("id",)),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        task = await _one(context, arguments["id"])

        await context.store.delete_task(str(context.workspace), task.id)
        return ToolResult(f"deleted task #{task.id} ({task.title})")


def task_tools() -> list[Any]:
    """The tasks family."""
    return [_Create(), _List(), _Update(), _Delete()]
