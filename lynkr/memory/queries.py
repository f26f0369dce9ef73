"""The statements the memory store runs on its worker thread (plain functions of a connection)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lynkr.memory.model import Memory, Scope
from lynkr.memory.schema import search_tokens
from lynkr.stores.sqlite import Connection

__all__ = [
    "COLUMNS",
    "execute",
    "fetch",
    "get_memories",
    "has_vector_table",
    "keyword_ids",
    "knn",
    "memory_of",
    "owner_clause",
    "vectors_of",
]

COLUMNS = (
    "id, content, type, workspace, owner, importance, surprise, created, updated, "
    "last_accessed, access_count, session_id, turn, superseded_by, successes, failures"
)


def owner_clause(scope: Scope, column: str = "owner") -> tuple[str, tuple[Any, ...]]:
    if scope.owner is None:
        return f"{column} IS NULL", ()
    return f"({column} = ? OR {column} IS NULL)", (scope.owner,)


def memory_of(row: Sequence[Any]) -> Memory:
    return Memory(*row)


def knn(
    connection: Connection, workspace: str, owners: Sequence[str], vector: bytes, limit: int
) -> list[tuple[int, float]]:
    """sqlite-vec's own kNN, for a workspace too large to hold in memory."""
    found = []
    for owner in owners:
        found += connection.execute(
            "SELECT rowid, distance FROM memory_vectors WHERE embedding MATCH ?"
            " AND k = ? AND workspace = ? AND owner = ?",
            (vector, limit, workspace, owner),
        ).fetchall()
    return [(int(rowid), 1.0 - float(distance)) for rowid, distance in found]


def vectors_of(connection: Connection, workspace: str) -> list[tuple[int, str, bytes]]:
    """A workspace's vectors, by rowid: `vec0` answers a partition without a MATCH by
    scanning the whole table (~24 ms at 10,000 even for an empty workspace), a rowid
    lookup directly."""
    rows = connection.execute(
        "SELECT id, coalesce(owner, '') FROM memories"
        " WHERE workspace = ? AND has_vector = 1 AND superseded_by IS NULL",
        (workspace,),
    ).fetchall()
    found = []
    for memory_id, owner in rows:
        vector = connection.execute(
            "SELECT embedding FROM memory_vectors WHERE rowid = ?", (memory_id,)
        ).fetchone()
        if vector is not None:
            found.append((int(memory_id), str(owner), bytes(vector[0])))
    return found


def has_vector_table(connection: Connection) -> bool:
    row = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'memory_vectors'").fetchone()
    return row is not None


def keyword_ids(connection: Connection, scope: Scope, query: str, limit: int) -> list[int]:
    """bm25 order, from the full-text index alone: the scopes a search may see are part of
    the MATCH (`scope_token`; a superseded memory's is `RETIRED`), so FTS5 intersects
    posting lists and scores only the memories it may return — no join, no filter after.
    (Joined to `memories` and filtered there, the planner walked the workspace's rows and
    probed FTS5 for each: seconds per query at 100,000 memories.)"""
    expression = f"scope_token : ({search_tokens(scope)}) AND content : ({query})"
    rows = connection.execute(
        "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?"
        " ORDER BY bm25(memories_fts, 1.0, 0.0) LIMIT ?",
        (expression, limit),
    ).fetchall()
    return [int(row[0]) for row in rows]


def get_memories(connection: Connection, ids: Sequence[int]) -> dict[int, Memory]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = connection.execute(
        f"SELECT {COLUMNS} FROM memories WHERE id IN ({marks})", tuple(ids)
    ).fetchall()
    return {int(row[0]): memory_of(row) for row in rows}


def execute(connection: Connection, sql: str, parameters: Sequence[Any]) -> None:
    connection.execute(sql, tuple(parameters))


def fetch(connection: Connection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    return connection.execute(sql, tuple(parameters)).fetchall()
