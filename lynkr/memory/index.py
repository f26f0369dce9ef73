"""Exact nearest-neighbour search over a workspace's vectors, in memory, with numpy.

sqlite-vec's `vec0` table is where vectors live (durable, written in the same
transactions as the memories); its kNN scans every vector of a partition in
C, ~23 ms for 100,000 256-dimension vectors here. A matrix product over the
same vectors held in memory takes ~2.5 ms (BLAS), so the store keeps each
searched workspace's vectors here, loaded from `vec0` on first use, and keeps
them in step with its own writes. Another process's writes (`lynkr memory
add` beside a running server) change SQLite's `data_version`; the store then
drops what is loaded and reads it again.

Used only on the store's worker thread, so it needs no lock. Past
`max_vectors` held in all, a workspace is not loaded and `vec0` answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["VectorIndex", "search"]

Loader = Callable[[str], list[tuple[int, str, bytes]]]


class _Space:
    """One workspace's vectors: ids, owners, and a matrix grown by appends."""

    __slots__ = ("ids", "matrix", "owned", "owners", "pending")

    def __init__(self, rows: Sequence[tuple[int, str, bytes]], dimensions: int) -> None:
        self.ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        self.owners = np.array([row[1] for row in rows], dtype=object)
        # Whether any vector belongs to an owner: without one, no owner filter is needed.
        self.owned = any(row[1] for row in rows)
        flat = b"".join(row[2] for row in rows)
        self.matrix = np.frombuffer(flat, dtype=np.float32).reshape(len(rows), dimensions).copy()
        self.pending: list[tuple[int, str, bytes]] = []

    def __len__(self) -> int:
        return len(self.ids) + len(self.pending)

    def settle(self, dimensions: int) -> None:
        if self.pending:
            more = _Space(self.pending, dimensions)
            self.ids = np.concatenate([self.ids, more.ids])
            self.owners = np.concatenate([self.owners, more.owners])
            self.owned = self.owned or more.owned
            self.matrix = np.vstack([self.matrix, more.matrix])
            self.pending = []

    def remove(self, gone: set[int]) -> None:
        self.pending = [row for row in self.pending if row[0] not in gone]
        keep = ~np.isin(self.ids, np.fromiter(gone, dtype=np.int64, count=len(gone)))
        if not keep.all():
            self.ids, self.owners, self.matrix = (
                self.ids[keep],
                self.owners[keep],
                self.matrix[keep],
            )


class VectorIndex:
    def __init__(self, dimensions: int, *, max_vectors: int = 200_000) -> None:
        self.dimensions = dimensions
        self.max_vectors = max_vectors
        self._spaces: dict[str, _Space] = {}
        self.loads = 0

    @property
    def held(self) -> int:
        return sum(len(space) for space in self._spaces.values())

    def clear(self) -> None:
        self._spaces.clear()

    def space(self, workspace: str, load: Loader) -> _Space | None:
        """The workspace's vectors, loaded if need be (on the store's thread: `load` reads
        the database); None when holding them would pass `max_vectors`."""
        space = self._spaces.get(workspace)
        if space is None:
            if self.held >= self.max_vectors:
                return None
            rows = load(workspace)
            if self.held + len(rows) > self.max_vectors:
                return None
            space = self._spaces[workspace] = _Space(rows, self.dimensions)
            self.loads += 1
        space.settle(self.dimensions)
        return space

    def nearest(
        self,
        workspace: str,
        owners: Iterable[str],
        vector: bytes,
        limit: int,
        load: Loader,
    ) -> list[tuple[int, float]] | None:
        """(id, cosine) of the `limit` nearest, nearest first; None when not held (too many)."""
        space = self.space(workspace, load)
        return None if space is None else search(space, owners, vector, limit)

    def added(self, workspace: str, owner: str, memory_id: int, vector: bytes) -> None:
        space = self._spaces.get(workspace)
        if space is not None:
            space.pending.append((memory_id, owner, vector))

    def removed(self, ids: Iterable[int]) -> None:
        gone = set(ids)
        if gone:
            for space in self._spaces.values():
                space.remove(gone)


def search(
    space: _Space, owners: Iterable[str], vector: bytes, limit: int
) -> list[tuple[int, float]]:
    """The `limit` nearest of a held space, nearest first. Reads the space only, and numpy's
    product lets go of the GIL: it may run on another thread while the store's thread
    runs the keyword search, as long as that thread writes nothing meanwhile."""
    if not len(space.ids):
        return []
    query = np.frombuffer(vector, dtype=np.float32)
    scores: Any = space.matrix @ query
    if space.owned:
        scores = np.where(np.isin(space.owners, list(set(owners))), scores, -np.inf)
    count = min(limit, len(scores))
    top = np.argpartition(-scores, count - 1)[:count]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(space.ids[i]), float(scores[i])) for i in top if scores[i] != -np.inf]
