"""The memory store's interface: what scoring, ranking and the service need of storage.

Narrow on purpose: SQLite (FTS5 + sqlite-vec) implements it in `sqlite.py`;
PostgreSQL (full-text search + pgvector) can implement the same methods
without touching scoring or ranking. Every method is a coroutine that does its
I/O off the event loop. Vectors are float32, L2-normalised, as bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lynkr.memory.decay import PruneRow
from lynkr.memory.model import Memory, Scope

__all__ = ["Candidates", "MemoryStore", "NewMemory", "StoreStats"]


@dataclass(frozen=True, slots=True)
class NewMemory:
    """A memory about to be stored."""

    content: str
    type: str
    scope: Scope
    importance: float
    surprise: float
    now: float
    session_id: str | None = None
    turn: int | None = None


@dataclass(frozen=True, slots=True)
class StoreStats:
    total: int
    active: int
    superseded: int
    by_type: dict[str, int]
    workspaces: int
    with_vectors: int
    vector_model: str | None


@dataclass(frozen=True, slots=True)
class Candidates:
    """What one retrieval found: ids by keyword (bm25 order), (id, cosine) by vector
    (nearest first), and the memories of both."""

    keyword_ids: list[int]
    vector_hits: list[tuple[int, float]]
    memories: dict[int, Memory]


class MemoryStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, memory: NewMemory, vector: bytes | None) -> int:
        """Store one memory; returns its id."""

    async def supersede(self, old_id: int, memory: NewMemory, vector: bytes | None) -> int:
        """Store `memory` and mark `old_id` as replaced by it, in one transaction."""

    async def reinforce(self, memory_id: int, importance: float, now: float) -> None:
        """A near-duplicate was seen again: set its importance, refresh its times."""

    async def record_outcome(self, memory_id: int, succeeded: bool, now: float) -> None:
        """A skill was used: count a success or a failure."""

    async def keyword_search(self, scope: Scope, query: str, limit: int) -> list[int]:
        """Ids matching the FTS5 expression `query` in bm25 order (active memories only)."""

    async def vector_search(
        self, scope: Scope, vector: bytes, limit: int
    ) -> list[tuple[int, float]]:
        """(id, cosine similarity) of the nearest active memories, nearest first."""

    async def candidates(
        self, scope: Scope, query: str | None, vector: bytes | None, limit: int
    ) -> Candidates:
        """`keyword_search`, `vector_search` and `get` of what they found, in one round trip
        (the request path's one store call)."""

    def surely_empty(self, scope: Scope) -> bool:
        """True only when nothing of `scope` is stored, known without I/O worth a thread
        hand-off (a store that cannot tell says False)."""

    async def get(self, ids: Sequence[int]) -> dict[int, Memory]: ...

    async def recent(self, scope: Scope, limit: int) -> list[Memory]:
        """The most recently created active memories of the scope."""

    async def listing(self, scope: Scope | None, limit: int, offset: int = 0) -> list[Memory]:
        """Newest first; every workspace when `scope` is None."""

    async def touch(self, counts: Mapping[int, int], now: float) -> None:
        """Count accesses (id → how many since the last call) and stamp them `now`."""

    async def delete(self, ids: Sequence[int]) -> int: ...

    async def prune_rows(self) -> list[PruneRow]: ...

    async def stats(self, scope: Scope | None) -> StoreStats: ...

    async def vector_model(self) -> tuple[str, int] | None:
        """The embedding model the stored vectors come from, and its dimension."""

    async def use_vector_model(self, model: str, dimensions: int) -> bool:
        """Make `model` the vector space; True when that dropped vectors of another model."""

    async def without_vectors(self, limit: int) -> list[tuple[int, str]]:
        """(id, content) of active memories with no vector yet (to embed in the background)."""

    async def put_vectors(self, vectors: Sequence[tuple[int, bytes]]) -> None: ...
