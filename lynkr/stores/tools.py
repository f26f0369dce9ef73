"""The server-side tools' state: file edits, tasks and test runs.

`ToolStore` is what the tools use; `SQLiteToolStore` keeps it in one SQLite
file in the data dir (`tools.sqlite3`), on one `Database` (one connection,
one worker thread), opened with the server and closed with it. Every record
belongs to a workspace (the absolute project directory), so a plan, an edit
history or a test history never crosses projects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lynkr.stores.sqlite import Connection, Database

__all__ = [
    "DATABASE_NAME",
    "EditRecord",
    "SQLiteToolStore",
    "TaskRecord",
    "TestRunRecord",
    "ToolStore",
]

DATABASE_NAME = "tools.sqlite3"


@dataclass(frozen=True, slots=True)
class EditRecord:
    """One change a file tool made: the bytes before and after (None: absent, or not kept)."""

    id: int
    at: float
    path: str
    action: str
    before: bytes | None
    after: bytes | None
    revertible: bool


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    title: str
    description: str
    status: str
    created: float
    updated: float


@dataclass(frozen=True, slots=True)
class TestRunRecord:
    """One stored run of a test profile (the last bytes of its output in `tail`)."""

    __test__ = False  # not a pytest class

    id: int
    profile: str
    started: float
    duration: float
    exit_code: int | None
    timed_out: bool
    tail: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class ToolStore(Protocol):
    """What the file, tasks and tests tools keep between calls, per workspace."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add_edit(
        self,
        workspace: str,
        session_id: str | None,
        *,
        path: str,
        action: str,
        before: bytes | None,
        after: bytes | None,
        revertible: bool,
    ) -> int:
        """Store one edit (now); returns its id."""

    async def edits(self, workspace: str, path: str | None, limit: int) -> list[EditRecord]:
        """The last `limit` edits (of one path), newest first."""

    async def edit(self, workspace: str, edit_id: int) -> EditRecord | None: ...

    async def add_task(
        self, workspace: str, session_id: str | None, title: str, description: str, status: str
    ) -> int: ...

    async def tasks(self, workspace: str, status: str | None, limit: int) -> list[TaskRecord]:
        """Oldest first, optionally only those with one status."""

    async def task(self, workspace: str, task_id: int) -> TaskRecord | None: ...

    async def update_task(self, workspace: str, task_id: int, changes: Mapping[str, str]) -> None:
        """Set some of `title`, `description`, `status` (other keys are refused)."""

    async def delete_task(self, workspace: str, task_id: int) -> None: ...

    async def add_test_run(
        self,
        workspace: str,
        session_id: str | None,
        *,
        profile: str,
        started: float,
        duration: float,
        exit_code: int | None,
        timed_out: bool,
        tail: str,
    ) -> int:
        """Store one run of a profile; returns its id."""

    async def test_runs(
        self, workspace: str, profile: str | None, limit: int
    ) -> list[TestRunRecord]:
        """The last `limit` runs (of one profile), newest first."""

    async def pass_rates(self, workspace: str) -> list[tuple[str, int, int]]:
        """(profile, runs, passed) for every profile run in `workspace`, by name."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    session_id TEXT,
    workspace TEXT NOT NULL,
    path TEXT NOT NULL,
    action TEXT NOT NULL,
    before BLOB,
    after BLOB,
    revertible INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS tool_edits_path ON tool_edits (workspace, path);
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
CREATE TABLE IF NOT EXISTS tool_test_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    session_id TEXT,
    profile TEXT NOT NULL,
    started REAL NOT NULL,
    duration REAL NOT NULL,
    exit_code INTEGER,
    timed_out INTEGER NOT NULL,
    tail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tool_test_runs_profile ON tool_test_runs (workspace, profile, id);
"""
_EDIT_COLUMNS = "id, at, path, action, before, after, revertible"
_TASK_COLUMNS = "id, title, description, status, created, updated"
_RUN_COLUMNS = "id, profile, started, duration, exit_code, timed_out, tail"
_TASK_FIELDS = frozenset({"title", "description", "status"})


class SQLiteToolStore:
    """A `ToolStore` in the SQLite file at `path`; the constructor does no I/O."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self.db = Database(
            path, setup=lambda db: db.executescript(_SCHEMA), thread_name="lynkr-tools"
        )

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    # Edits -------------------------------------------------------------------

    async def add_edit(
        self,
        workspace: str,
        session_id: str | None,
        *,
        path: str,
        action: str,
        before: bytes | None,
        after: bytes | None,
        revertible: bool,
    ) -> int:
        row = (self.clock(), session_id, workspace, path, action, before, after, int(revertible))
        return await self.db.write(
            _insert,
            "INSERT INTO tool_edits (at, session_id, workspace, path, action, before, after,"
            " revertible) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    async def edits(self, workspace: str, path: str | None, limit: int) -> list[EditRecord]:
        query = f"SELECT {_EDIT_COLUMNS} FROM tool_edits WHERE workspace = ?"
        query += (" AND path = ?" if path else "") + " ORDER BY id DESC LIMIT ?"
        params = (workspace, *((path,) if path else ()), limit)
        return [_edit(row) for row in await self.db.run(_rows, query, params)]

    async def edit(self, workspace: str, edit_id: int) -> EditRecord | None:
        query = f"SELECT {_EDIT_COLUMNS} FROM tool_edits WHERE id = ? AND workspace = ?"
        rows = await self.db.run(_rows, query, (edit_id, workspace))
        return _edit(rows[0]) if rows else None

    # Tasks -------------------------------------------------------------------

    async def add_task(
        self, workspace: str, session_id: str | None, title: str, description: str, status: str
    ) -> int:
        now = self.clock()
        return await self.db.write(
            _insert,
            "INSERT INTO tool_tasks (workspace, session_id, title, description, status, created,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (workspace, session_id, title, description, status, now, now),
        )

    async def tasks(self, workspace: str, status: str | None, limit: int) -> list[TaskRecord]:
        query = f"SELECT {_TASK_COLUMNS} FROM tool_tasks WHERE workspace = ?"
        query += (" AND status = ?" if status else "") + " ORDER BY id LIMIT ?"
        params = (workspace, *((status,) if status else ()), limit)
        return [TaskRecord(*row) for row in await self.db.run(_rows, query, params)]

    async def task(self, workspace: str, task_id: int) -> TaskRecord | None:
        query = f"SELECT {_TASK_COLUMNS} FROM tool_tasks WHERE id = ? AND workspace = ?"
        rows = await self.db.run(_rows, query, (task_id, workspace))
        return TaskRecord(*rows[0]) if rows else None

    async def update_task(self, workspace: str, task_id: int, changes: Mapping[str, str]) -> None:
        unknown = set(changes) - _TASK_FIELDS
        if unknown:
            raise ValueError(f"tasks have no field {sorted(unknown)[0]!r}")
        assignments = ", ".join(f"{column} = ?" for column in changes)  # known column names
        await self.db.write(
            _execute,
            f"UPDATE tool_tasks SET {assignments}, updated = ? WHERE id = ? AND workspace = ?",
            (*changes.values(), self.clock(), task_id, workspace),
        )

    async def delete_task(self, workspace: str, task_id: int) -> None:
        await self.db.write(
            _execute, "DELETE FROM tool_tasks WHERE id = ? AND workspace = ?", (task_id, workspace)
        )

    # Test runs -----------------------------------------------------------------

    async def add_test_run(
        self,
        workspace: str,
        session_id: str | None,
        *,
        profile: str,
        started: float,
        duration: float,
        exit_code: int | None,
        timed_out: bool,
        tail: str,
    ) -> int:
        return await self.db.write(
            _insert,
            "INSERT INTO tool_test_runs (workspace, session_id, profile, started, duration,"
            " exit_code, timed_out, tail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (workspace, session_id, profile, started, duration, exit_code, int(timed_out), tail),
        )

    async def test_runs(
        self, workspace: str, profile: str | None, limit: int
    ) -> list[TestRunRecord]:
        query = f"SELECT {_RUN_COLUMNS} FROM tool_test_runs WHERE workspace = ?"
        query += (" AND profile = ?" if profile else "") + " ORDER BY id DESC LIMIT ?"
        params = (workspace, *((profile,) if profile else ()), limit)
        rows = await self.db.run(_rows, query, params)
        return [TestRunRecord(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows]

    async def pass_rates(self, workspace: str) -> list[tuple[str, int, int]]:
        rows = await self.db.run(
            _rows,
            "SELECT profile, COUNT(*), SUM(exit_code = 0 AND timed_out = 0) FROM tool_test_runs"
            " WHERE workspace = ? GROUP BY profile ORDER BY profile",
            (workspace,),
        )
        return [(r[0], int(r[1]), int(r[2] or 0)) for r in rows]


def _rows(db: Connection, query: str, params: Sequence[Any]) -> list[Any]:
    return db.execute(query, params).fetchall()


def _execute(db: Connection, query: str, params: Sequence[Any]) -> None:
    db.execute(query, params)


def _insert(db: Connection, query: str, params: Sequence[Any]) -> int:
    db.execute(query, params)
    (row_id,) = db.execute("SELECT last_insert_rowid()").fetchone()
    return int(row_id)


def _edit(row: Sequence[Any]) -> EditRecord:
    return EditRecord(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))
