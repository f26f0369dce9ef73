"""The memory database's schema: its migrations, and the keys rows are found by.

`MIGRATIONS` are applied in order at open, each in its own transaction, the
version kept in `PRAGMA user_version`; a file newer than this code is refused
rather than guessed at. `scope_token` is the word that puts a memory's
workspace into the full-text index (so a search reads only the postings of
the scopes it may see).
"""

from __future__ import annotations

import hashlib

from lynkr.memory.model import Scope
from lynkr.stores.sqlite import Connection

__all__ = ["MIGRATIONS", "RETIRED", "migrate", "scope_token", "search_tokens"]

MIGRATIONS: tuple[str, ...] = (
    # 1: memories, their full-text index and its triggers, the vector space.
    """
    CREATE TABLE memories (
        id INTEGER PRIMARY KEY,
        content TEXT NOT NULL,
        type TEXT NOT NULL,
        workspace TEXT NOT NULL,
        owner TEXT,
        importance REAL NOT NULL,
        surprise REAL NOT NULL DEFAULT 0,
        access_count INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        last_accessed REAL,
        session_id TEXT,
        turn INTEGER,
        superseded_by INTEGER REFERENCES memories(id) ON DELETE SET NULL,
        successes INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        scope_token TEXT NOT NULL,
        has_vector INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX memories_scope ON memories (workspace, owner, superseded_by, created);
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, scope_token, content='memories', content_rowid='id',
        tokenize='porter unicode61'
    );
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, content, scope_token)
            VALUES (new.id, new.content, new.scope_token);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, content, scope_token)
            VALUES ('delete', old.id, old.content, old.scope_token);
    END;
    CREATE TRIGGER memories_au AFTER UPDATE OF content, scope_token ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, content, scope_token)
            VALUES ('delete', old.id, old.content, old.scope_token);
        INSERT INTO memories_fts (rowid, content, scope_token)
            VALUES (new.id, new.content, new.scope_token);
    END;
    CREATE TABLE memory_vector_space (model TEXT NOT NULL, dimensions INTEGER NOT NULL);
    """,
)

# The token of a superseded memory: no search asks for it, so FTS5 never scores one.
RETIRED = "xretired"


def scope_token(workspace: str, owner: str | None = None) -> str:
    """One word naming a workspace (and owner) in the full-text index, so a search reads
    only the postings of the scopes it may see, whatever else the table holds."""
    key = f"{workspace}\0{owner or ''}"
    return "w" + hashlib.sha256(key.encode()).hexdigest()[:20]


def search_tokens(scope: Scope) -> str:
    owners = (None,) if scope.owner is None else (None, scope.owner)
    return " OR ".join(scope_token(w, o) for w in scope.workspaces for o in owners)


def migrate(connection: Connection) -> int:
    """Apply the migrations this file lacks; returns the version it is at."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the memory database is at schema version {version}, newer than this lynkr"
            f" knows ({len(MIGRATIONS)}); upgrade lynkr or point memory at another data dir"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """The statements of a migration (triggers hold `;` inside BEGIN … END)."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        inside_trigger = text.upper().startswith("CREATE TRIGGER") and not text.upper().endswith(
            "END;"
        )
        if text.endswith(";") and not inside_trigger:
            statements.append(text)
            current = []
    if "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements
