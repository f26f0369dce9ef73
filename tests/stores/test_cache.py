"""The stores: TTL with an injectable clock, LRU by count and bytes, SQLite across a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lynkr.stores.cache import PRUNE_BATCH, CacheStore, Entry, MemoryStore, SQLiteStore


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(20):
            await scenario()

    asyncio.run(bounded())


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(text: str = "x", size: int | None = None) -> Entry:
    body = text.encode() if size is None else text.encode().ljust(size, b" ")
    return Entry(message=body, stored_at=0.0)


StoreFactory = Callable[..., CacheStore]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    def make(**options: Any) -> CacheStore:
        if request.param == "memory":
            return MemoryStore(**options)
        return SQLiteStore(tmp_path / "cache.sqlite3", **options)

    return make


def test_get_set_delete(make_store: StoreFactory) -> None:
    async def scenario() -> None:
        store = make_store()
        try:
            assert await store.get("k") is None
            await store.set("k", entry("one"), 60)
            got = await store.get("k")
            assert got is not None and got.message == b"one"
            await store.set("k", entry("two"), 60)  # replaced whole
            got = await store.get("k")
            assert got is not None and got.message == b"two"
            await store.delete("k")
            assert await store.get("k") is None
            await store.delete("absent")
        finally:
            await store.close()

    run(scenario)


def test_entries_expire_after_ttl(make_store: StoreFactory) -> None:
    clock = Clock()

    async def scenario() -> None:
        store = make_store(clock=clock)
        try:
            await store.set("k", entry(), 300)
            clock.now += 299.9
            assert await store.get("k") is not None
            clock.now += 0.1
            assert await store.get("k") is None
        finally:
            await store.close()

    run(scenario)


def test_eviction_by_count(make_store: StoreFactory) -> None:
    clock = Clock()

    async def scenario() -> None:
        store = make_store(max_entries=3, clock=clock)
        try:
            for name in "abc":
                await store.set(name, entry(name), 60)
                clock.now += 1
            await store.set("d", entry("d"), 60)
            assert await store.get("a") is None
            assert all([await store.get(name) for name in "bcd"])
        finally:
            await store.close()

    run(scenario)


def test_memory_store_is_lru_by_count() -> None:
    async def scenario() -> None:
        store = MemoryStore(max_entries=3)
        for name in "abc":
            await store.set(name, entry(name), 60)
        assert await store.get("a") is not None  # a is now the most recently used
        await store.set("d", entry("d"), 60)
        assert await store.get("b") is None
        assert all([await store.get(name) for name in "acd"])
        assert len(store) == 3

    run(scenario)


def test_eviction_by_bytes(make_store: StoreFactory) -> None:
    clock = Clock()

    async def scenario() -> None:
        store = make_store(max_entries=100, max_bytes=1000, clock=clock)
        try:
            for name in "abc":
                await store.set(name, entry(name, size=400), 60)
                clock.now += 1
            assert await store.get("a") is None  # 3 × 400 > 1000
            assert await store.get("b") is not None
            await store.set("huge", entry("h", size=1001), 60)  # larger than the budget
            assert await store.get("huge") is None
            assert await store.get("c") is not None
        finally:
            await store.close()

    run(scenario)


def test_memory_store_is_lru_by_bytes() -> None:
    async def scenario() -> None:
        store = MemoryStore(max_entries=100, max_bytes=1000)
        for name in "ab":
            await store.set(name, entry(name, size=400), 60)
        await store.get("a")
        await store.set("c", entry("c", size=400), 60)
        assert await store.get("b") is None
        assert await store.get("a") is not None
        assert store.bytes == 800

    run(scenario)


def test_sqlite_entries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / "cache.sqlite3"  # the directory is created too

    async def scenario() -> None:
        first = SQLiteStore(path)
        await first.set("k", Entry(message=b'{"type":"message"}', stored_at=12.5), 300)
        await first.close()
        second = SQLiteStore(path)  # a new process would do exactly this
        try:
            got = await second.get("k")
            assert got == Entry(message=b'{"type":"message"}', stored_at=12.5)
        finally:
            await second.close()

    run(scenario)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_constructor_does_no_io(tmp_path: Path) -> None:
    path = tmp_path / "never" / "cache.sqlite3"
    SQLiteStore(path)
    assert not path.parent.exists()


def test_sqlite_prunes_expired_rows_on_write_in_batches(tmp_path: Path) -> None:
    clock = Clock()

    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "c.sqlite3", max_entries=10_000, clock=clock)
        try:
            for index in range(PRUNE_BATCH + 10):
                await store.set(f"old{index}", entry(), 10)
            clock.now += 11
            await store.set("new", entry(), 10)
            assert await store.count() == 10 + 1  # one batch of expired rows went
            await store.set("newer", entry(), 10)
            assert await store.count() == 2
        finally:
            await store.close()

    run(scenario)


def test_sqlite_concurrent_writers_never_corrupt_entries(tmp_path: Path) -> None:
    """Many tasks on one store and two stores on one file: every read is one whole entry."""
    path = tmp_path / "c.sqlite3"

    async def scenario() -> None:
        stores = [SQLiteStore(path, max_entries=1000), SQLiteStore(path, max_entries=1000)]
        values = {f"writer{n}".encode() * 500 for n in range(20)}
        try:
            await asyncio.gather(
                *(
                    stores[n % 2].set("same", Entry(message=value, stored_at=0.0), 60)
                    for n, value in enumerate(sorted(values))
                ),
                *(stores[n % 2].set(f"k{n}", entry(str(n)), 60) for n in range(50)),
            )
            for store in stores:
                got = await store.get("same")
                assert got is not None and got.message in values
            assert await stores[0].count() == 51
        finally:
            for store in stores:
                await store.close()

    run(scenario)


def test_sqlite_close_is_idempotent_and_reopens(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "c.sqlite3")
        await store.close()
        await store.set("k", entry(), 60)
        await store.close()
        await store.close()
        assert await store.get("k") is not None  # reopened lazily
        await store.close()

    run(scenario)


def test_sqlite_close_ends_the_worker_thread(tmp_path: Path) -> None:
    """When close returns, the store's thread has ended (it used to outlive the store)."""

    def workers() -> list[str]:
        return [thread.name for thread in threading.enumerate() if "lynkr-cache" in thread.name]

    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "c.sqlite3")
        await store.set("k", entry(), 60)
        assert len(workers()) == 1
        await store.close()
        assert workers() == []

    run(scenario)
