"""The index database: schema, writes of one file's tags, and the lookups.

One SQLite file (`PATH/.lynkr/index.sqlite3` by default) opened through
lynkr's connection factory. Rows per file — symbols, references, imports —
are replaced together when the file changes; symbol names have a trigram
FTS5 index for substring search. `meta` records the schema and each grammar's
version: a change of either empties the index, and the next build is cold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lynkr.repoindex.tags import Rows
from lynkr.stores.sqlite import Connection, connect, transaction

__all__ = ["SCHEMA_VERSION", "IndexDB", "RefHit", "StoredFile", "SymbolHit", "versions_of"]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, language TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL,
    lines INTEGER NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS symbols (
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL, kind TEXT NOT NULL, line INTEGER NOT NULL, col INTEGER NOT NULL,
    end_line INTEGER NOT NULL, signature TEXT NOT NULL, parent TEXT, doc TEXT
);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols (name);
CREATE INDEX IF NOT EXISTS symbols_file ON symbols (file_id, line);
CREATE TABLE IF NOT EXISTS refs (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL, kind TEXT NOT NULL, line INTEGER NOT NULL, col INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_name ON refs (name);
CREATE INDEX IF NOT EXISTS refs_file ON refs (file_id);
CREATE TABLE IF NOT EXISTS imports (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    target TEXT NOT NULL, line INTEGER NOT NULL,
    resolved INTEGER REFERENCES files(id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS imports_file ON imports (file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS symbols_fts USING fts5(
    name, content='symbols', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS symbols_ai AFTER INSERT ON symbols BEGIN
    INSERT INTO symbols_fts (rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER IF NOT EXISTS symbols_ad AFTER DELETE ON symbols BEGIN
    INSERT INTO symbols_fts (symbols_fts, rowid, name) VALUES ('delete', old.id, old.name);
END;
"""


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str


@dataclass(frozen=True, slots=True)
class SymbolHit:
    name: str
    kind: str
    path: str
    line: int
    column: int
    end_line: int
    signature: str
    parent: str | None
    doc: str | None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class RefHit:
    name: str
    kind: str
    path: str
    line: int
    column: int

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class IndexDB:
    """The index file; used from one thread at a time (the command line, a tool's worker)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.connection: Connection = connect(self.path)
        self.connection.executescript(_SCHEMA)

    def close(self) -> None:
        self.connection.close()

    # meta -------------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        rows = self.connection.execute("SELECT key, value FROM meta").fetchall()
        return {str(k): str(v) for k, v in rows}

    def reset_unless(self, versions: dict[str, str]) -> bool:
        """Empty the index when its schema or grammars differ from `versions`; True if so."""
        if self.versions() == versions:
            return False
        with transaction(self.connection):
            for table in ("imports", "refs", "symbols", "files", "meta"):
                self.connection.execute(f"DELETE FROM {table}")
            for item in versions.items():
                self.connection.execute("INSERT INTO meta (key, value) VALUES (?, ?)", item)
        return True

    # files ------------------------------------------------------------------------------

    def files(self) -> dict[str, StoredFile]:
        rows = self.connection.execute(
            "SELECT id, path, size, mtime_ns, hash FROM files"
        ).fetchall()
        return {
            str(r[1]): StoredFile(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]))
            for r in rows
        }

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        self.connection.execute(
            "UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id)
        )

    def remove(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.connection.execute("DELETE FROM files WHERE path = ?", (path,))

    def put(self, path: str, language: str, size: int, mtime_ns: int, digest: str,
            rows: Rows) -> int:  # fmt: skip
        """Replace everything known about `path` with its tags' `rows` (in the caller's
        transaction)."""
        lines, error, symbols, references, imports = rows
        values = (language, size, mtime_ns, digest, lines, error)
        known = self.connection.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if known is not None:  # the same id: imports resolved to this file stay resolved
            file_id = int(known[0])
            self.connection.execute(
                "UPDATE files SET language = ?, size = ?, mtime_ns = ?, hash = ?, lines = ?,"
                " error = ? WHERE id = ?",
                (*values, file_id),
            )
            for table in ("symbols", "refs", "imports"):
                self.connection.execute(f"DELETE FROM {table} WHERE file_id = ?", (file_id,))
        else:
            row = self.connection.execute(
                "INSERT INTO files (path, language, size, mtime_ns, hash, lines, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (path, *values),
            ).fetchone()
            file_id = int(row[0])
        self.connection.executemany(
            "INSERT INTO symbols (file_id, name, kind, line, col, end_line, signature, parent,"
            " doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(file_id, *symbol) for symbol in symbols],
        )
        self.connection.executemany(
            "INSERT INTO refs (file_id, name, kind, line, col) VALUES (?, ?, ?, ?, ?)",
            [(file_id, *reference) for reference in references],
        )
        self.connection.executemany(
            "INSERT INTO imports (file_id, target, line) VALUES (?, ?, ?)",
            [(file_id, *found) for found in imports],
        )
        return file_id

    def resolve_imports(self, resolve: Any, files: Sequence[int], *, unresolved_too: bool) -> None:
        """Point imports at the indexed files they name, where `resolve(importer, target,
        paths)` can tell: those of `files` (just parsed), and with `unresolved_too` (files
        came or went) every import that names no file yet."""
        indexed = self.connection.execute("SELECT id, path FROM files").fetchall()
        paths = {str(p): int(i) for i, p in indexed}
        where = "imports.file_id IN (SELECT value FROM json_each(?))"
        if unresolved_too:
            where = f"({where} OR imports.resolved IS NULL)"
        rows = self.connection.execute(
            "SELECT imports.rowid, files.path, imports.target, imports.resolved FROM imports"
            f" JOIN files ON files.id = imports.file_id WHERE {where}",
            (json.dumps(list(files)),),
        ).fetchall()
        changes = []
        for rowid, importer, target, current in rows:
            found = resolve(str(importer), str(target), paths)
            resolved = paths.get(found) if found else None
            if resolved != current:
                changes.append((resolved, rowid))
        self.connection.executemany("UPDATE imports SET resolved = ? WHERE rowid = ?", changes)

    # lookups ----------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        def one(sql: str) -> int:
            return int(self.connection.execute(sql).fetchone()[0])

        languages = self.connection.execute(
            "SELECT language, count(*) FROM files GROUP BY language ORDER BY language"
        ).fetchall()
        return {
            "files": one("SELECT count(*) FROM files"),
            "symbols": one("SELECT count(*) FROM symbols"),
            "references": one("SELECT count(*) FROM refs"),
            "imports": one("SELECT count(*) FROM imports"),
            "languages": {str(k): int(v) for k, v in languages},
        }

    def symbols(self, query: str, *, kind: str | None = None, limit: int = 20) -> list[SymbolHit]:
        """Exact names first, then names starting with `query` (both through the name
        index, while fewer than `limit` were found), and only when neither found any, the
        names containing it (three or more characters: the trigram index)."""
        found: dict[int, SymbolHit] = {}
        kind_sql, kind_args = (" AND s.kind = ?", (kind,)) if kind else ("", ())
        base = (
            "SELECT s.id, s.name, s.kind, f.path, s.line, s.col, s.end_line, s.signature,"
            " s.parent, s.doc FROM symbols s JOIN files f ON f.id = s.file_id WHERE "
        )
        steps: list[tuple[str, Sequence[Any], str]] = [
            ("s.name = ?", (query,), " ORDER BY f.path, s.line LIMIT ?"),
            ("s.name > ? AND s.name < ?", (query, query + "\U0010ffff"),
             " ORDER BY s.name, f.path, s.line LIMIT ?"),
        ]  # fmt: skip
        if len(query) >= 3:
            steps.append(
                ("s.id IN (SELECT rowid FROM symbols_fts WHERE symbols_fts MATCH ?)",
                 (_trigram_phrase(query),), " ORDER BY length(s.name), f.path, s.line LIMIT ?")
            )  # fmt: skip
        for number, (where, args, order) in enumerate(steps):
            if len(found) >= limit or (number == 2 and found):
                break
            rows = self.connection.execute(
                base + where + kind_sql + order, (*args, *kind_args, limit + len(found))
            ).fetchall()
            for row in rows:
                found.setdefault(int(row[0]), SymbolHit(*row[1:]))
        return list(found.values())[:limit]

    def references(self, name: str, limit: int = 200) -> list[RefHit]:
        rows = self.connection.execute(
            "SELECT r.name, r.kind, f.path, r.line, r.col FROM refs r JOIN files f"
            " ON f.id = r.file_id WHERE r.name = ? ORDER BY f.path, r.line, r.col LIMIT ?",
            (name, limit),
        ).fetchall()
        return [RefHit(*row) for row in rows]

    def outline(self, path: str) -> list[SymbolHit]:
        rows = self.connection.execute(
            "SELECT s.name, s.kind, f.path, s.line, s.col, s.end_line, s.signature, s.parent,"
            " s.doc FROM symbols s JOIN files f ON f.id = s.file_id WHERE f.path = ?"
            " ORDER BY s.line, s.col",
            (path,),
        ).fetchall()
        return [SymbolHit(*row) for row in rows]

    def most_imported(self, limit: int = 8) -> list[tuple[str, int]]:
        """The files other files import most, with how many files import each."""
        rows = self.connection.execute(
            "SELECT t.path, count(DISTINCT i.file_id) AS n FROM imports i"
            " JOIN files t ON t.id = i.resolved WHERE i.resolved != i.file_id"
            " GROUP BY t.path ORDER BY n DESC, t.path LIMIT ?",
            (limit,),
        ).fetchall()
        return [(str(path), int(count)) for path, count in rows]

    def imports(self, path: str) -> list[tuple[str, int, str | None]]:
        rows = self.connection.execute(
            "SELECT i.target, i.line, t.path FROM imports i JOIN files f ON f.id = i.file_id"
            " LEFT JOIN files t ON t.id = i.resolved WHERE f.path = ? ORDER BY i.line, i.target",
            (path,),
        ).fetchall()
        return [(str(t), int(line), None if p is None else str(p)) for t, line, p in rows]


def _trigram_phrase(query: str) -> str:
    return '"' + query.replace('"', '""') + '"'


def versions_of(grammars: dict[str, str]) -> dict[str, str]:
    return {"schema": SCHEMA_VERSION, "grammars": json.dumps(grammars, sort_keys=True)}
