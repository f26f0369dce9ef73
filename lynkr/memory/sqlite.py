"""The memory store in SQLite: `memories`, an FTS5 index kept by triggers, a sqlite-vec table.

One file in the data dir (`memory.sqlite3`), on the one `Database` worker
(`lynkr.stores.sqlite`), its schema versioned by `PRAGMA user_version`
(`MIGRATIONS`, applied in order at open). The vector table is made when the
embedding model is known (`use_vector_model`): `vec0` with cosine distance,
the workspace as its partition key, so a kNN search reads one workspace's
vectors only, and chunks of 128 vectors (the default 1,024 allocates 1 MB for
each new workspace's first memory: 3.4 ms per add instead of 0.8). A driver
that cannot load sqlite-vec leaves the store keyword-only (`vectors_available`
is False) and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lynkr.memory.decay import PruneRow
from lynkr.memory.index import VectorIndex, search
from lynkr.memory.model import Memory, Scope
from lynkr.memory.queries import (
    COLUMNS,
    execute,
    fetch,
    get_memories,
    has_vector_table,
    keyword_ids,
    knn,
    memory_of,
    owner_clause,
    vectors_of,
)
from lynkr.memory.schema import RETIRED, migrate, scope_token
from lynkr.memory.store import Candidates, NewMemory, StoreStats
from lynkr.stores.sqlite import Connection, Database, connect, load_extension

__all__ = ["DATABASE_NAME", "SQLiteMemoryStore"]

DATABASE_NAME = "memory.sqlite3"
# From this many vectors on, a workspace's kNN runs beside the keyword search.
_OFFLOAD_VECTORS = 20_000


class SQLiteMemoryStore:
    """`MemoryStore` on one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, *, driver_name: str | None = None) -> None:
        self.path = Path(path)
        self.vectors_available = False
        self.vector_problem: str | None = None
        # The searched workspaces' vectors in memory (worker thread only); made with the table.
        self.index: VectorIndex | None = None
        self._data_version: int | None = None
        self._pool: ThreadPoolExecutor | None = None  # the kNN helper threads
        # The workspaces with active memories, as the worker last saw them; and a connection
        # of the event loop's own that only reads `data_version`, so `surely_empty` can say
        # "nothing here" without a trip to the worker (see `surely_empty`).
        self._populated: frozenset[str] = frozenset()
        self._watch: Connection | None = None
        self._watch_seen: int | None = None
        self._watch_pending: int | None = None
        self.db = Database(
            self.path,
            setup=self._setup,
            driver_name=driver_name,
            thread_name="lynkr-memory",
        )

    # Lifetime ---------------------------------------------------------------------------

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _setup(self, connection: Connection) -> None:
        migrate(connection)
        self._sync(connection)
        try:
            import sqlite_vec  # type: ignore[import-untyped]

            load_extension(connection, sqlite_vec.loadable_path())
            self.vectors_available = True
        except Exception as exc:  # each driver raises its own error type
            self.vector_problem = f"sqlite-vec does not load ({exc}); memory search is keyword-only"

    # Writes -----------------------------------------------------------------------------

    async def add(self, memory: NewMemory, vector: bytes | None) -> int:
        return await self.db.write(self._insert, memory, vector)

    async def supersede(self, old_id: int, memory: NewMemory, vector: bytes | None) -> int:
        def job(connection: Connection) -> int:
            new_id = self._insert(connection, memory, vector)
            connection.execute(
                "UPDATE memories SET superseded_by = ?, updated = ?, has_vector = 0,"
                " scope_token = ? WHERE id = ?",
                (new_id, memory.now, RETIRED, old_id),
            )
            self._drop_vectors(connection, [old_id])
            return new_id

        return await self.db.write(job)

    def _insert(self, connection: Connection, memory: NewMemory, vector: bytes | None) -> int:
        scope = memory.scope
        row = connection.execute(
            "INSERT INTO memories (content, type, workspace, owner, importance, surprise,"
            " created, updated, session_id, turn, scope_token)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " RETURNING id",
            (
                memory.content,
                memory.type,
                scope.workspace,
                scope.owner,
                memory.importance,
                memory.surprise,
                memory.now,
                memory.now,
                memory.session_id,
                memory.turn,
                scope_token(scope.workspace, scope.owner),
            ),
        ).fetchone()
        memory_id = int(row[0])
        self._populated = self._populated | {scope.workspace}
        if vector is not None:
            self._put_vector(connection, memory_id, scope, vector)
        return memory_id

    def _put_vector(
        self,
        connection: Connection,
        memory_id: int,
        scope: Scope,
        vector: bytes,
        *,
        replace: bool = False,
    ) -> None:
        if not self.vectors_available or not has_vector_table(connection):
            return
        if replace:  # a re-embedding; a new memory has no vector to replace
            connection.execute("DELETE FROM memory_vectors WHERE rowid = ?", (memory_id,))
        connection.execute(
            "INSERT INTO memory_vectors (rowid, embedding, workspace, owner) VALUES (?, ?, ?, ?)",
            (memory_id, vector, scope.workspace, scope.owner or ""),
        )
        connection.execute("UPDATE memories SET has_vector = 1 WHERE id = ?", (memory_id,))
        if self.index is not None:
            if replace:
                self.index.removed([memory_id])
            self.index.added(scope.workspace, scope.owner or "", memory_id, vector)

    def _drop_vectors(self, connection: Connection, ids: Sequence[int]) -> None:
        if self.vectors_available and has_vector_table(connection):
            for memory_id in ids:
                connection.execute("DELETE FROM memory_vectors WHERE rowid = ?", (memory_id,))
            if self.index is not None:
                self.index.removed(ids)

    async def reinforce(self, memory_id: int, importance: float, now: float) -> None:
        await self.db.write(
            execute,
            "UPDATE memories SET importance = ?, updated = ? WHERE id = ?",
            (importance, now, memory_id),
        )

    async def record_outcome(self, memory_id: int, succeeded: bool, now: float) -> None:
        column = "successes" if succeeded else "failures"
        await self.db.write(
            execute,
            f"UPDATE memories SET {column} = {column} + 1, updated = ? WHERE id = ?",
            (now, memory_id),
        )

    async def touch(self, counts: Mapping[int, int], now: float) -> None:
        if not counts:
            return

        def job(connection: Connection) -> None:
            for memory_id, count in counts.items():
                connection.execute(
                    "UPDATE memories SET access_count = access_count + ?, last_accessed = ?"
                    " WHERE id = ?",
                    (count, now, memory_id),
                )

        await self.db.write(job)

    async def delete(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0

        def job(connection: Connection) -> int:
            marks = ",".join("?" * len(ids))
            self._drop_vectors(connection, ids)
            cursor = connection.execute(
                f"DELETE FROM memories WHERE id IN ({marks}) RETURNING id", tuple(ids)
            )
            return len(cursor.fetchall())

        return await self.db.write(job)

    # Reads ------------------------------------------------------------------------------

    async def keyword_search(self, scope: Scope, query: str, limit: int) -> list[int]:
        return await self.db.run(keyword_ids, scope, query, limit)

    async def candidates(
        self, scope: Scope, query: str | None, vector: bytes | None, limit: int
    ) -> Candidates:
        pending = self._watch_pending
        found = await self.db.run(self._candidates, scope, query, vector, limit)
        if pending is not None:  # the worker has seen at least what that version held
            self._watch_seen, self._watch_pending = pending, None
        return found

    def _candidates(
        self, connection: Connection, scope: Scope, query: str | None, vector: bytes | None,
        limit: int,
    ) -> Candidates:  # fmt: skip
        """Both searches in one job; the vector product of held workspaces runs on a helper
        thread while this one runs the keyword search (two cores: the slower of the two,
        not their sum)."""
        self._sync(connection)
        pending = None
        if vector is not None and self.vectors_available:
            pending = self._vector_search_started(connection, scope, vector, limit)
        by_keyword = keyword_ids(connection, scope, query, limit) if query else []
        vector_hits = pending() if pending is not None else []
        ids = list(dict.fromkeys([*by_keyword, *(memory_id for memory_id, _ in vector_hits)]))
        return Candidates(by_keyword, vector_hits, get_memories(connection, ids))

    async def vector_search(
        self, scope: Scope, vector: bytes, limit: int
    ) -> list[tuple[int, float]]:
        if not self.vectors_available:
            return []
        return await self.db.run(
            lambda connection: self._vector_search_started(connection, scope, vector, limit)()
        )

    def _vector_search_started(
        self, connection: Connection, scope: Scope, vector: bytes, limit: int
    ) -> Callable[[], list[tuple[int, float]]]:
        """Start the kNN of `scope`; call the result for its hits. What is not held in the
        index is searched by sqlite-vec here, on this thread, before returning."""
        index = self._current_index(connection)
        if index is None:
            return list
        owners = ("",) if scope.owner is None else ("", scope.owner)
        found: list[tuple[int, float]] = []
        held = []
        for workspace in scope.workspaces:
            space = index.space(workspace, lambda name: vectors_of(connection, name))
            if space is None:
                found += knn(connection, workspace, owners, vector, limit)
            elif len(space.ids):
                held.append(space)
        # A small space is searched here at once: handing it to a thread costs more than
        # the product (~0.15 ms for 5,000 vectors).
        large = [space for space in held if len(space.ids) >= _OFFLOAD_VECTORS]
        for space in held:
            if len(space.ids) < _OFFLOAD_VECTORS:
                found += search(space, owners, vector, limit)
        futures = [self._helper().submit(search, space, owners, vector, limit) for space in large]

        def result() -> list[tuple[int, float]]:
            hits = found + [hit for future in futures for hit in future.result()]
            hits.sort(key=lambda hit: -hit[1])
            return hits[:limit]

        return result

    def _helper(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lynkr-memory-knn")
        return self._pool

    def _sync(self, connection: Connection) -> None:
        """Catch up with another connection's writes (`lynkr memory add` beside a running
        server): the held vectors are dropped, the populated workspaces read again."""
        version = int(connection.execute("PRAGMA data_version").fetchone()[0])
        if version == self._data_version:
            return
        self._data_version = version
        rows = connection.execute(
            "SELECT DISTINCT workspace FROM memories WHERE superseded_by IS NULL"
        ).fetchall()
        self._populated = frozenset(str(row[0]) for row in rows)
        if self.index is not None:
            self.index.clear()
            if not has_vector_table(connection):  # another process changed the model
                self.index = None

    def _current_index(self, connection: Connection) -> VectorIndex | None:
        self._sync(connection)
        return self.index

    def surely_empty(self, scope: Scope) -> bool:
        """True when nothing of `scope` can be found: no memory of its workspaces was there
        when the worker last looked, and nothing was written since (the event loop's own
        connection reads `data_version`, ~3 µs). Anything unsure is False; the next search
        then looks for real and brings the view up to date."""
        try:
            if self._watch is None:
                self._watch = connect(self.path, driver_name=self.db.driver_name)
            version = int(self._watch.execute("PRAGMA data_version").fetchone()[0])
        except Exception:
            return False
        if version == self._watch_seen and not self._populated & set(scope.workspaces):
            return True
        self._watch_pending = version
        return False

    async def get(self, ids: Sequence[int]) -> dict[int, Memory]:
        return await self.db.run(get_memories, list(ids)) if ids else {}

    async def recent(self, scope: Scope, limit: int) -> list[Memory]:
        owner, values = owner_clause(scope)
        rows = await self.db.run(
            fetch,
            f"SELECT {COLUMNS} FROM memories WHERE workspace IN (?, ?) AND superseded_by IS NULL"
            f" AND {owner} ORDER BY created DESC, id DESC LIMIT ?",
            (*scope.workspaces, *values, limit),
        )
        return [memory_of(row) for row in rows]

    async def listing(self, scope: Scope | None, limit: int, offset: int = 0) -> list[Memory]:
        if scope is None:
            sql = f"SELECT {COLUMNS} FROM memories ORDER BY id DESC LIMIT ? OFFSET ?"
            rows = await self.db.run(fetch, sql, (limit, offset))
        else:
            owner, values = owner_clause(scope)
            sql = (
                f"SELECT {COLUMNS} FROM memories WHERE workspace IN (?, ?) AND {owner}"
                " ORDER BY id DESC LIMIT ? OFFSET ?"
            )
            rows = await self.db.run(fetch, sql, (*scope.workspaces, *values, limit, offset))
        return [memory_of(row) for row in rows]

    async def prune_rows(self) -> list[PruneRow]:
        rows = await self.db.run(
            fetch,
            "SELECT id, importance, max(updated, coalesce(last_accessed, 0)),"
            " superseded_by IS NOT NULL FROM memories",
            (),
        )
        return [PruneRow(int(r[0]), float(r[1]), float(r[2]), bool(r[3])) for r in rows]

    async def stats(self, scope: Scope | None) -> StoreStats:
        return await self.db.run(self._stats, scope)

    def _stats(self, connection: Connection, scope: Scope | None) -> StoreStats:
        where, values = "1", ()
        if scope is not None:
            owner, owner_values = owner_clause(scope)
            where, values = f"workspace IN (?, ?) AND {owner}", (*scope.workspaces, *owner_values)
        row = connection.execute(
            "SELECT count(*), sum(superseded_by IS NULL), sum(superseded_by IS NOT NULL),"
            f" count(DISTINCT workspace), sum(has_vector) FROM memories WHERE {where}",
            values,
        ).fetchone()
        types = connection.execute(
            f"SELECT type, count(*) FROM memories WHERE {where} AND superseded_by IS NULL"
            " GROUP BY type ORDER BY type",
            values,
        ).fetchall()
        space = connection.execute("SELECT model FROM memory_vector_space").fetchone()
        return StoreStats(
            total=int(row[0] or 0),
            active=int(row[1] or 0),
            superseded=int(row[2] or 0),
            by_type={str(t): int(n) for t, n in types},
            workspaces=int(row[3] or 0),
            with_vectors=int(row[4] or 0),
            vector_model=str(space[0]) if space else None,
        )

    # The vector space -------------------------------------------------------------------

    async def vector_model(self) -> tuple[str, int] | None:
        rows = await self.db.run(fetch, "SELECT model, dimensions FROM memory_vector_space", ())
        return (str(rows[0][0]), int(rows[0][1])) if rows else None

    async def use_vector_model(self, model: str, dimensions: int) -> bool:
        if not self.vectors_available:
            return False
        return await self.db.write(self._use_vector_model, model, dimensions)

    def _use_vector_model(self, connection: Connection, model: str, dimensions: int) -> bool:
        current = connection.execute("SELECT model, dimensions FROM memory_vector_space").fetchone()
        same = current is not None and (current[0], current[1]) == (model, dimensions)
        self.index = VectorIndex(dimensions)
        if same and has_vector_table(connection):
            return False
        dropped = current is not None
        connection.execute("DROP TABLE IF EXISTS memory_vectors")
        connection.execute(
            f"CREATE VIRTUAL TABLE memory_vectors USING vec0(embedding float[{int(dimensions)}]"
            " distance_metric=cosine, workspace text partition key, owner text,"
            " chunk_size=128)"
        )
        connection.execute("DELETE FROM memory_vector_space")
        connection.execute(
            "INSERT INTO memory_vector_space (model, dimensions) VALUES (?, ?)", (model, dimensions)
        )
        connection.execute("UPDATE memories SET has_vector = 0")
        return dropped

    async def without_vectors(self, limit: int) -> list[tuple[int, str]]:
        if not self.vectors_available:
            return []
        rows = await self.db.run(
            fetch,
            "SELECT id, content FROM memories WHERE has_vector = 0 AND superseded_by IS NULL"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def put_vectors(self, vectors: Sequence[tuple[int, bytes]]) -> None:
        def job(connection: Connection) -> None:
            for memory_id, vector in vectors:
                row = connection.execute(
                    "SELECT workspace, owner FROM memories WHERE id = ?", (memory_id,)
                ).fetchone()
                if row is not None:
                    scope = Scope(row[0], row[1])
                    self._put_vector(connection, memory_id, scope, vector, replace=True)

        if vectors and self.vectors_available:
            await self.db.write(job)
