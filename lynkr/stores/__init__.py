"""State that outlives a request: the embedded SQLite default (DESIGN.md §7).

* `sqlite` — the one connection factory (`connect`: pysqlite3, apsw or the
  stdlib, whichever imports first; WAL; busy timeout) and `Database`, one
  connection on one worker thread, so the event loop never waits on disk.

This layer may import only `lynkr.errors`. Stores for a particular kind of
state (sessions, memory, tasks) build on `Database` in the layer that owns
that state.
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
