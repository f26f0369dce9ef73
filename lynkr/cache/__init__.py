"""The response cache's core: key, stores and answer recording, below the cache middleware.

* `key` — the cache key (pure; its docstring says exactly what is in it);
* `store` — the small async `CacheStore` interface and `MemoryStore` (LRU, TTL, byte budget);
* `sqlite` — `SQLiteStore`, the same interface in a SQLite file (survives restarts);
* `record` — assembling a complete answer from a passing stream or JSON body, and
  turning a stored answer into a hit (pure).

This layer may import only `protocol` and `errors`; `lynkr.middleware.cache` is its ASGI face.
"""

from lynkr.cache.key import (
    BILLING_PREFIX,
    EXCLUDED_FIELDS,
    KEY_VERSION,
    cache_key,
    canonical_request,
)
from lynkr.cache.record import (
    CACHEABLE_STOPS,
    TRUNCATED_STOPS,
    JSONRecorder,
    StreamRecorder,
    hit_message,
    storable,
)
from lynkr.cache.sqlite import SQLiteStore
from lynkr.cache.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, CacheStore, Entry, MemoryStore

__all__ = [
    "BILLING_PREFIX",
    "CACHEABLE_STOPS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "EXCLUDED_FIELDS",
    "KEY_VERSION",
    "TRUNCATED_STOPS",
    "CacheStore",
    "Entry",
    "JSONRecorder",
    "MemoryStore",
    "SQLiteStore",
    "StreamRecorder",
    "cache_key",
    "canonical_request",
    "hit_message",
    "storable",
]
