"""The store interface the cache middleware talks to, and the in-memory store.

A store maps a key (hex string) to an `Entry` for at most `ttl` seconds. The
interface is four coroutines, so a store backed by a server (Redis, later)
fits it as well as the in-process ones:

* `get(key)` → the entry, or None when absent or expired;
* `set(key, entry, ttl)` → store or replace (a store may refuse an entry
  larger than its budget, silently: the cache is best-effort);
* `delete(key)`;
* `close()` → release connections and threads (idempotent).

Entries are immutable bytes, so nothing a reader does to a served answer can
change what the next reader gets, and concurrent writers replace whole
values (last write wins; both writers stored a complete answer).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ENTRIES", "CacheStore", "Entry", "MemoryStore"]

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
