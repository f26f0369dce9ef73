"""`SQLiteStore`: cache entries in a SQLite file, so they survive a restart (DESIGN.md §7).

Every statement runs on one dedicated worker thread that owns the only
connection, so the event loop never waits on disk and statements never
interleave. The file is opened lazily, on the first operation (a
constructor does no I/O), in WAL mode with a busy timeout, so several
processes may share it.

Expired rows are pruned continuously: each write first deletes at most
`PRUNE_BATCH` expired rows, then evicts the rows that expire soonest (the
oldest writes, with one TTL) until the entry count and byte budget hold.
Reads do not write: unlike the in-memory store, eviction is oldest-first,
not least-recently-used, so a hit costs one indexed SELECT.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lynkr.cache.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, Clock, Entry

__all__ = ["PRUNE_BATCH", "SQLiteStore"]

PRUNE_BATCH = 256
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lynkr_cache (
    key TEXT PRIMARY KEY,
    message BLOB NOT NULL,
    stored_at REAL NOT NULL,
    expires REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lynkr_cache_expires ON lynkr_cache (expires);
"""


class SQLiteStore:
    """A `CacheStore` in the SQLite file at `path` (created with its directory if missing).

    `clock` gives wall-clock seconds (entries must expire across restarts);
    it is injectable for tests.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Clock = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None

    async def get(self, key: str) -> Entry | None:
        row = await self._run(self._get, key, self.clock())
        return None if row is None else Entry(message=row[0], stored_at=row[1])

    async def set(self, key: str, entry: Entry, ttl: float) -> None:
        if entry.size > self.max_bytes or self.max_entries < 1 or ttl <= 0:
            await self.delete(key)
            return
        await self._run(self._set, key, entry, self.clock(), ttl)

    async def delete(self, key: str) -> None:
        await self._run(self._execute, "DELETE FROM lynkr_cache WHERE key = ?", (key,))

    async def count(self) -> int:
        """How many rows the file holds, expired or not (for tests and metrics)."""
        row = await self._run(self._fetch, "SELECT COUNT(*) FROM lynkr_cache", ())
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the connection and end the worker thread (it has ended when this returns)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close)
        # Wait for the worker (off the loop): with wait=False that non-daemon thread
        # could still be running after close returned, outliving the store.
        await asyncio.to_thread(executor.shutdown, wait=True)

    # Everything below runs on the worker thread.

    async def _run(self, function: Any, *args: Any) -> Any:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lynkr-cache")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            try:
                _set_up(connection)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _get(self, key: str, now: float) -> tuple[bytes, float] | None:
        row = self._fetch(
            "SELECT message, stored_at FROM lynkr_cache WHERE key = ? AND expires > ?", (key, now)
        )
        return None if row is None else (bytes(row[0]), float(row[1]))

    def _set(self, key: str, entry: Entry, now: float, ttl: float) -> None:
        db = self._db()
        with _transaction(db):
            db.execute(
                "DELETE FROM lynkr_cache WHERE rowid IN "
                "(SELECT rowid FROM lynkr_cache WHERE expires <= ? LIMIT ?)",
                (now, PRUNE_BATCH),
            )
            db.execute(
                "INSERT OR REPLACE INTO lynkr_cache (key, message, stored_at, expires, size) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, entry.message, entry.stored_at, now + ttl, entry.size),
            )
            self._evict(db)

    def _evict(self, db: sqlite3.Connection) -> None:
        """Delete the soonest-expiring rows until count and bytes are within budget."""
        count, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM lynkr_cache"
        ).fetchone()
        over = max(count - self.max_entries, 0)
        if over:
            db.execute(
                "DELETE FROM lynkr_cache WHERE rowid IN "
                "(SELECT rowid FROM lynkr_cache ORDER BY expires LIMIT ?)",
                (over,),
            )
            size = db.execute("SELECT COALESCE(SUM(size), 0) FROM lynkr_cache").fetchone()[0]
        while size > self.max_bytes:
            row = db.execute(
                "SELECT rowid, size FROM lynkr_cache ORDER BY expires LIMIT 1"
            ).fetchone()
            db.execute("DELETE FROM lynkr_cache WHERE rowid = ?", (row[0],))
            size -= row[1]

    def _fetch(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self._db().execute(sql, args).fetchone()

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        self._db().execute(sql, args)

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _set_up(connection: sqlite3.Connection) -> None:
    """WAL mode and the table. Switching to WAL answers "locked" without waiting when
    another connection is opening the same new file at that moment, so it is retried."""
    for attempt in range(50):
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.02)
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(_SCHEMA)


class _transaction:
    """`BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
