"""State that outlives a request, behind one small interface per kind of state.

* `sqlite` — the one connection factory (`connect`: pysqlite3, apsw or the
  stdlib, whichever imports first; WAL; busy timeout) and `Database`, one
  connection on one worker thread, so the event loop never waits on disk;
* `cache` — the response cache's `CacheStore`: in memory, or a SQLite file;
* `tools` — the server-side tools' `ToolStore` (edits, tasks, test runs).

A kind whose storage is entangled with its own logic (sessions' branches)
keeps its store interface in its own package and builds the SQLite
implementation on `Database` (`lynkr.sessions`). Another engine (Redis,
PostgreSQL) implements the same interfaces; callers never know which is in
use. This layer may import only `lynkr.errors`.
"""

from lynkr.stores.sqlite import (
    DRIVERS,
    Connection,
    Cursor,
    Database,
    Driver,
    connect,
    driver,
    transaction,
)

__all__ = [
    "DRIVERS",
    "Connection",
    "Cursor",
    "Database",
    "Driver",
    "connect",
    "driver",
    "transaction",
]
