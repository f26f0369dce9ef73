"""The SQLite memory store on both drivers that load sqlite-vec (pysqlite3, apsw)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from lynkr.memory.model import GLOBAL_WORKSPACE, Scope
from lynkr.memory.schema import MIGRATIONS
from lynkr.memory.sqlite import SQLiteMemoryStore
from lynkr.memory.store import NewMemory
from lynkr.stores.sqlite import connect

pytestmark = pytest.mark.anyio
DRIVERS = ["pysqlite3", "apsw"]
WS = Scope("/ws")


def vector(*values: float) -> bytes:
    array = np.zeros(8, dtype=np.float32)
    array[: len(values)] = values
    return (array / np.linalg.norm(array)).tobytes()


def new(content: str, scope: Scope = WS, now: float = 1000.0, **fields: object) -> NewMemory:
    return NewMemory(content, str(fields.get("type", "fact")), scope, 0.6, 0.5, now)


@pytest.fixture(params=DRIVERS)
async def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = SQLiteMemoryStore(tmp_path / "memory.sqlite3", driver_name=request.param)
    await opened.open()
    await opened.use_vector_model("test/8", 8)
    yield opened
    await opened.close()


async def test_keyword_and_vector_search_stay_in_their_workspace(store: SQLiteMemoryStore) -> None:
    assert store.vectors_available, store.vector_problem
    a = await store.add(new("The staging database listens on port 5433"), vector(1, 0))
    b = await store.add(new("Deploys run on Fridays"), vector(0, 1))
    other = await store.add(new("The staging database is MySQL", Scope("/other")), vector(1, 0))
    shared = await store.add(
        new("Global: use UTC everywhere", Scope(GLOBAL_WORKSPACE)), vector(1, 1)
    )
    assert await store.keyword_search(WS, '"database"', 10) == [a]
    assert await store.keyword_search(Scope("/other"), '"database"', 10) == [other]
    assert await store.keyword_search(WS, '"utc"', 10) == [shared]  # global is seen everywhere
    near = await store.vector_search(WS, vector(1, 0.1), 10)
    assert [i for i, _ in near] == [a, shared, b]
    assert near[0][1] == pytest.approx(0.995, abs=0.01)
    assert other not in {i for i, _ in await store.vector_search(WS, vector(1, 0), 10)}


async def test_owners_see_their_own_and_the_shared(store: SQLiteMemoryStore) -> None:
    mine = await store.add(new("alice likes tabs", Scope("/ws", "alice")), vector(1))
    theirs = await store.add(new("bob likes tabs", Scope("/ws", "bob")), vector(1))
    shared = await store.add(new("everyone likes tabs"), vector(1))
    alice = Scope("/ws", "alice")
    assert set(await store.keyword_search(alice, '"tabs"', 10)) == {mine, shared}
    assert {i for i, _ in await store.vector_search(alice, vector(1), 10)} == {mine, shared}
    assert set(await store.keyword_search(WS, '"tabs"', 10)) == {shared}
    assert theirs not in {m.id for m in await store.recent(alice, 10)}


async def test_supersede_delete_and_the_fts_index_in_sync(store: SQLiteMemoryStore) -> None:
    old = await store.add(new("The DB listens on port 5433"), vector(1))
    fresh = await store.supersede(old, new("The DB listens on port 5434", now=2000), vector(1))
    assert await store.keyword_search(WS, '"listens"', 10) == [fresh]
    assert [i for i, _ in await store.vector_search(WS, vector(1), 10)] == [fresh]
    assert (await store.get([old]))[old].superseded_by == fresh
    stats = await store.stats(WS)
    assert (stats.active, stats.superseded, stats.with_vectors) == (1, 1, 1)
    assert await store.delete([fresh, old, 12345]) == 2
    assert await store.keyword_search(WS, '"listens"', 10) == []
    assert (await store.stats(None)).total == 0


async def test_touch_reinforce_outcomes_and_prune_rows(store: SQLiteMemoryStore) -> None:
    memory_id = await store.add(new("We run pytest with -x"), None)
    await store.touch({memory_id: 1}, 1500.0)
    await store.reinforce(memory_id, 0.9, 1600.0)
    await store.record_outcome(memory_id, True, 1700.0)
    await store.record_outcome(memory_id, False, 1700.0)
    got = (await store.get([memory_id]))[memory_id]
    assert (got.access_count, got.last_accessed, got.importance) == (1, 1500.0, 0.9)
    assert (got.successes, got.failures, got.updated) == (1, 1, 1700.0)
    rows = await store.prune_rows()
    assert [(r.id, r.importance, r.last_touched, r.superseded) for r in rows] == [
        (memory_id, 0.9, 1700.0, False)
    ]


async def test_a_new_model_drops_old_vectors_for_reembedding(store: SQLiteMemoryStore) -> None:
    memory_id = await store.add(new("We run pytest with -x"), vector(1))
    assert await store.vector_model() == ("test/8", 8)
    assert await store.use_vector_model("test/8", 8) is False
    assert await store.use_vector_model("other/4", 4) is True
    assert await store.without_vectors(10) == [(memory_id, "We run pytest with -x")]
    await store.put_vectors([(memory_id, np.ones(4, dtype=np.float32).tobytes())])
    assert await store.without_vectors(10) == []
    assert (await store.stats(None)).vector_model == "other/4"


async def test_punctuation_in_queries_never_breaks_fts(store: SQLiteMemoryStore) -> None:
    from lynkr.memory.text import fts_query, keywords

    await store.add(new("Use `ruff check --fix` before commits"), None)
    for prompt in ['what about "ruff" OR (check*) AND NEAR', "col:umn^ - ruff!", "¿ruff? ✓"]:
        expression = fts_query(keywords(prompt))
        assert expression is not None
        assert len(await store.keyword_search(WS, expression, 5)) == 1


async def test_the_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    store = SQLiteMemoryStore(path)
    await store.open()
    await store.close()
    connection = connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    connection.close()
    newer = SQLiteMemoryStore(path)
    with pytest.raises(RuntimeError, match="newer than this lynkr knows"):
        await newer.open()
    await newer.close()


def test_the_stdlib_driver_is_keyword_only(tmp_path: Path) -> None:
    import asyncio

    async def run() -> tuple[bool, list[int], str | None]:
        store = SQLiteMemoryStore(tmp_path / "m.sqlite3", driver_name="sqlite3")
        await store.open()
        try:
            await store.use_vector_model("test/8", 8)
            memory_id = await store.add(new("We run pytest with -x"), vector(1))
            found = await store.keyword_search(WS, '"pytest"', 5)
            assert await store.vector_search(WS, vector(1), 5) == []
            return store.vectors_available, [memory_id] == found and found, store.vector_problem
        finally:
            await store.close()

    available, found, problem = asyncio.run(run())
    assert not available and found and problem and "keyword-only" in problem


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from lynkr.memory.model import Scope
    from lynkr.memory.sqlite import SQLiteMemoryStore
    from lynkr.memory.store import NewMemory

    async def main():
        store = SQLiteMemoryStore(sys.argv[1])
        await store.open()
        i = 0
        while True:
            memory = NewMemory(f"memory number {i}", "fact", Scope("/ws"), 0.5, 0.5, 1.0)
            await store.add(memory, None)
            print(i, flush=True)
            i += 1

    asyncio.run(main())
    """
)


def test_kill_9_loses_no_committed_memory(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    committed = -1
    assert writer.stdout is not None
    deadline = time.monotonic() + 30
    while committed < 200 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        committed = int(line)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    writer.stdout.close()
    assert committed >= 200, "the writer did not get going"
    connection = connect(path)
    stored = {row[0] for row in connection.execute("SELECT content FROM memories").fetchall()}
    fts = connection.execute("SELECT count(*) FROM memories_fts").fetchone()[0]
    connection.close()
    # every write it was told had committed is there, and the index matches the table
    assert {f"memory number {i}" for i in range(committed + 1)} <= stored
    assert fts == len(stored)


async def test_the_in_memory_index_answers_as_sqlite_vec_does(store: SQLiteMemoryStore) -> None:
    rng = np.random.default_rng(7)
    for n in range(60):
        owner = "alice" if n % 3 == 0 else None
        raw = rng.standard_normal(8).astype(np.float32)
        await store.add(
            new(f"memory {n}", Scope("/ws", owner)), (raw / np.linalg.norm(raw)).tobytes()
        )
    query = vector(1, 2, 3)
    alice = Scope("/ws", "alice")
    held = await store.vector_search(alice, query, 10)
    assert store.index is not None and store.index.loads == 2  # the workspace and global
    store.index.max_vectors = 0  # nothing may be held: sqlite-vec's own kNN answers
    store.index.clear()
    scanned = await store.vector_search(alice, query, 10)
    assert [i for i, _ in held] == [i for i, _ in scanned]
    assert [s for _, s in held] == pytest.approx([s for _, s in scanned], abs=1e-5)
    store.index.max_vectors = 200_000
    gone = held[0][0]
    await store.delete([gone])
    assert gone not in {i for i, _ in await store.vector_search(alice, query, 10)}


async def test_another_process_s_writes_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    server, command_line = SQLiteMemoryStore(path), SQLiteMemoryStore(path)
    for opened in (server, command_line):
        await opened.open()
        await opened.use_vector_model("test/8", 8)
    try:
        first = await server.add(new("first"), vector(1))
        assert [i for i, _ in await server.vector_search(WS, vector(1), 5)] == [first]
        second = await command_line.add(new("second"), vector(1, 0.01))
        assert {i for i, _ in await server.vector_search(WS, vector(1), 5)} == {first, second}
    finally:
        await server.close()
        await command_line.close()


async def test_surely_empty_knows_nothing_is_there_and_notices_other_writers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.sqlite3"
    server, command_line = SQLiteMemoryStore(path), SQLiteMemoryStore(path)
    await server.open()
    await command_line.open()
    try:
        assert not server.surely_empty(WS)  # never looked: unsure
        await server.candidates(WS, '"x"', None, 5)
        assert server.surely_empty(WS)
        assert server.surely_empty(Scope("/elsewhere"))
        await command_line.add(new("Deploys go out on Tuesdays"), None)
        assert not server.surely_empty(WS)  # another connection wrote
        found = await server.candidates(WS, '"deploys"', None, 5)
        assert len(found.memories) == 1
        assert not server.surely_empty(WS) and server.surely_empty(Scope("/elsewhere"))
    finally:
        await server.close()
        await command_line.close()
