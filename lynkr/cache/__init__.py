"""The response cache's pure core: the key and answer recording, below the cache middleware.

* `key` — the cache key (pure; its docstring says exactly what is in it);
* `record` — assembling a complete answer from a passing stream or JSON body, and
  turning a stored answer into a hit (pure).

The stores the entries live in (memory, SQLite) are `lynkr.stores.cache`;
`lynkr.middleware.cache` is the ASGI face. This layer may import only
`protocol` and `errors`.
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

__all__ = [
    "BILLING_PREFIX",
    "CACHEABLE_STOPS",
    "EXCLUDED_FIELDS",
    "KEY_VERSION",
    "TRUNCATED_STOPS",
    "JSONRecorder",
    "StreamRecorder",
    "cache_key",
    "canonical_request",
    "hit_message",
    "storable",
]
