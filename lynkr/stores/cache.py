"""The response cache's stores: the `CacheStore` interface, in memory, in a SQLite file.

A store maps a key (hex string) to an `Entry` for at most `ttl` seconds. The
interface is four coroutines, so a store backed by a server (Redis) fits it
as well as the in-process ones:

* `get(key)` → the entry, or None when absent or expired;
* `set(key, entry, ttl)` → store or replace (a store may refuse an entry
  larger than its budget, silently: the cache is best-effort);
* `delete(key)`;
* `close()` → release connections and threads (idempotent).

Entries are immutable bytes, so nothing a reader does to a served answer can
change what the next reader gets, and concurrent writers replace whole
values (last write wins; both writers stored a complete answer).

`MemoryStore` evicts the least recently used first. `SQLiteStore` keeps
entries across a restart, on a `Database` (one connection on its own worker
thread, so the event loop never waits on disk), opened lazily on the first
operation, in WAL mode so several processes may share the file. Each write
first deletes at most `PRUNE_BATCH` expired rows, then evicts the rows that
expire soonest (the oldest writes, with one TTL) until the entry count and
byte budget hold. Reads do not write: eviction there is oldest-first, not
least-recently-used, so a hit costs one indexed SELECT.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lynkr.stores.sqlite import Connection, Database

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "PRUNE_BATCH",
    "CacheStore",
    "Entry",
    "MemoryStore",
    "SQLiteStore",
]

DEFAULT_MAX_ENTRIES = 64
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored answer: a complete Anthropic message as JSON, and when it was stored."""

    message: bytes
    stored_at: float

    @property
    def size(self) -> int:
        """The bytes this entry counts against a store's budget."""
        return len(self.message)


class CacheStore(Protocol):
    """What the cache middleware needs from a store (see the module docstring)."""

    async def get(self, key: str) -> Entry | None: ...

    async def set(self, key: str, entry: Entry, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """Least recently used first out, bounded by entry count and bytes, entries expiring.

    `clock` (monotonic seconds) is injectable for tests. Every operation is
    synchronous under the coroutine surface, so on one event loop no two
    operations interleave.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[Entry, float]] = OrderedDict()

    async def get(self, key: str) -> Entry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        entry, expires = found
        if self.clock() >= expires:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    async def set(self, key: str, entry: Entry, ttl: float) -> None:
        self._remove(key)
        if entry.size > self.max_bytes or self.max_entries < 1 or ttl <= 0:
            return
        self._entries[key] = (entry, self.clock() + ttl)
        self.bytes += entry.size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    async def delete(self, key: str) -> None:
        self._remove(key)

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _remove(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.bytes -= found[0].size


PRUNE_BATCH = 256

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
    it is injectable for tests. The constructor does no I/O.
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
        self.db = self._database()

    async def get(self, key: str) -> Entry | None:
        row = await self.db.run(_get, key, self.clock())
        return None if row is None else Entry(message=row[0], stored_at=row[1])

    async def set(self, key: str, entry: Entry, ttl: float) -> None:
        if entry.size > self.max_bytes or self.max_entries < 1 or ttl <= 0:
            await self.delete(key)
            return
        await self.db.write(self._set, key, entry, self.clock(), ttl)

    async def delete(self, key: str) -> None:
        await self.db.write(_delete, key)

    async def count(self) -> int:
        """How many rows the file holds, expired or not (for tests and metrics)."""
        return await self.db.run(_count)

    async def close(self) -> None:
        """Close the file; a later operation opens it again (the cache is best effort, and
        a middleware closed by one lifespan may serve the next)."""
        db, self.db = self.db, self._database()
        await db.close()

    def _database(self) -> Database:
        return Database(
            self.path, setup=lambda db: db.executescript(_SCHEMA), thread_name="lynkr-cache"
        )

    def _set(self, db: Connection, key: str, entry: Entry, now: float, ttl: float) -> None:
        """On the worker, in a transaction: prune, store, evict to the budgets."""
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

    def _evict(self, db: Connection) -> None:
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


def _get(db: Connection, key: str, now: float) -> tuple[bytes, float] | None:
    row = db.execute(
        "SELECT message, stored_at FROM lynkr_cache WHERE key = ? AND expires > ?", (key, now)
    ).fetchone()
    return None if row is None else (bytes(row[0]), float(row[1]))


def _delete(db: Connection, key: str) -> None:
    db.execute("DELETE FROM lynkr_cache WHERE key = ?", (key,))


def _count(db: Connection) -> int:
    row = db.execute("SELECT COUNT(*) FROM lynkr_cache").fetchone()
    return int(row[0]) if row else 0
