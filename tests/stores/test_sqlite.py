"""The SQLite connection factory and `Database` (lynkr/stores/sqlite.py), on real files."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

import lynkr.stores
from lynkr.stores import DRIVERS, Connection, Database, connect, driver, transaction

T = TypeVar("T")

AVAILABLE = [
    name for name, module in DRIVERS.items() if importlib.util.find_spec(module.split(".")[0])
]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(20):
            return await coroutine

    return asyncio.run(bounded())


@pytest.fixture(params=AVAILABLE)
def driver_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(lynkr.stores).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)  # not its modules
    }
    assert set(lynkr.stores.__all__) == public


def test_the_default_driver_is_the_first_that_imports() -> None:
    assert driver().name == AVAILABLE[0]
    print(f"SQLite driver here: {driver().name} (SQLite {driver().sqlite_version})")


def test_an_unknown_driver_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown SQLite driver 'sqlite4'; known: pysqlite3"):
        driver("sqlite4")


def test_stdlib_driver_is_always_there() -> None:
    found = driver("sqlite3")
    assert found.module is sqlite3
    assert found.sqlite_version == sqlite3.sqlite_version


def test_connect_creates_the_directory_and_sets_wal_and_busy_timeout(
    tmp_path: Path, driver_name: str
) -> None:
    path = tmp_path / "deep" / "dir" / "lynkr.sqlite3"
    db = connect(path, driver_name=driver_name, busy_timeout=2.5)
    try:
        assert path.is_file()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        db.close()


def test_connect_refuses_a_bad_synchronous(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of OFF, NORMAL, FULL, EXTRA"):
        connect(tmp_path / "x.db", synchronous="SOMETIMES")
    with pytest.raises(ValueError, match="'SOMETIMES'"):
        Database(tmp_path / "x.db", synchronous="SOMETIMES")


def test_transaction_commits_or_rolls_back(tmp_path: Path, driver_name: str) -> None:
    db = connect(tmp_path / "t.db", driver_name=driver_name)
    db.executescript("CREATE TABLE t (a INTEGER); CREATE TABLE u (b INTEGER);")
    with transaction(db):
        db.execute("INSERT INTO t VALUES (?)", (1,))
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO t VALUES (?)", (2,))
        raise RuntimeError("boom")
    assert db.execute("SELECT a FROM t").fetchall() == [(1,)]
    db.close()


def test_a_failed_commit_is_rolled_back(tmp_path: Path, driver_name: str) -> None:
    """A deferred constraint fails at COMMIT: the transaction must not stay open."""
    db = connect(tmp_path / "fk.db", driver_name=driver_name)
    db.executescript(
        "CREATE TABLE p (id INTEGER PRIMARY KEY);"
        "CREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);"
    )
    with pytest.raises(Exception, match="FOREIGN KEY"), transaction(db):
        db.execute("INSERT INTO c VALUES (7)")
    with transaction(db):  # would fail "within a transaction" had the first stayed open
        db.execute("INSERT INTO p VALUES (7)")
    assert db.execute("SELECT COUNT(*) FROM c").fetchone() == (0,)
    db.close()


def test_a_second_connection_sees_committed_rows(tmp_path: Path, driver_name: str) -> None:
    first = connect(tmp_path / "shared.db", driver_name=driver_name)
    second = connect(tmp_path / "shared.db", driver_name="sqlite3")
    first.executescript("CREATE TABLE t (a TEXT)")
    with transaction(first):
        first.execute("INSERT INTO t VALUES (?)", ("hello",))
    assert second.execute("SELECT a FROM t").fetchone() == ("hello",)
    first.close()
    second.close()


def _schema(db: Connection) -> None:
    db.executescript("CREATE TABLE IF NOT EXISTS t (a INTEGER)")


def _insert(db: Connection, value: int) -> int:
    db.execute("INSERT INTO t VALUES (?)", (value,))
    return value


def _values(db: Connection) -> list[int]:
    return [row[0] for row in db.execute("SELECT a FROM t ORDER BY rowid").fetchall()]


def test_database_runs_jobs_in_order_on_one_worker_thread(tmp_path: Path, driver_name: str) -> None:
    async def scenario() -> tuple[list[int], set[str]]:
        database = Database(tmp_path / "d.db", setup=_schema, driver_name=driver_name)
        await database.open()
        threads: set[str] = set()
        futures = []
        for value in range(50):
            futures.append(database.submit_write(_insert, value))
            futures.append(database.submit(lambda _: threads.add(threading.current_thread().name)))
        await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        values = await database.run(_values)
        await database.close()
        return values, threads

    values, threads = run(scenario())
    assert values == list(range(50))
    assert len(threads) == 1
    assert threading.current_thread().name not in threads


def test_a_failing_write_is_rolled_back(tmp_path: Path) -> None:
    def half_then_fail(db: Connection) -> None:
        db.execute("INSERT INTO t VALUES (1)")
        raise KeyError("half done")

    async def scenario() -> list[int]:
        database = Database(tmp_path / "d.db", setup=_schema)
        with pytest.raises(KeyError):
            await database.write(half_then_fail)
        values = await database.run(_values)
        await database.close()
        return values

    assert run(scenario()) == []


def test_close_flushes_every_queued_job(tmp_path: Path) -> None:
    path = tmp_path / "flush.db"

    def slow_insert(db: Connection, value: int) -> None:
        time.sleep(0.01)
        db.execute("INSERT INTO t VALUES (?)", (value,))

    async def scenario() -> None:
        database = Database(path, setup=_schema)
        for value in range(20):
            database.submit_write(slow_insert, value)  # fire and forget
        await database.close()
        with pytest.raises(RuntimeError, match="closed"):
            database.submit(_values)
        await database.close()  # twice is harmless

    run(scenario())
    check = connect(path)
    assert _values(check) == list(range(20))
    check.close()


def test_slow_sqlite_work_does_not_block_the_event_loop(tmp_path: Path) -> None:
    def slow(db: Connection) -> None:
        time.sleep(0.3)

    async def scenario() -> int:
        database = Database(tmp_path / "d.db")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await database.run(slow)
        task.cancel()
        await database.close()
        return ticks

    assert run(scenario()) >= 10


def test_a_failing_setup_closes_the_connection_and_is_retried(tmp_path: Path) -> None:
    calls = []

    def setup(db: Connection) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("first time fails")
        _schema(db)

    async def scenario() -> list[int]:
        database = Database(tmp_path / "d.db", setup=setup)
        with pytest.raises(sqlite3.OperationalError):
            await database.open()
        await database.write(_insert, 7)
        values = await database.run(_values)
        await database.close()
        return values

    assert run(scenario()) == [7]
    assert len(calls) == 2


def test_database_names_its_driver(tmp_path: Path) -> None:
    assert Database(tmp_path / "x.db", driver_name="sqlite3").driver.name == "sqlite3"
    assert not (tmp_path / "x.db").exists()  # the constructor does no I/O


# --------------------------------------------------------------------------- batched writes


@pytest.mark.parametrize(("max_batch", "first_sees"), [(64, [0, 1, 2, 3, 4, 5]), (2, [0, 1])])
def test_queued_writes_commit_together_and_a_failing_one_fails_alone(
    tmp_path: Path, max_batch: int, first_sees: list[int]
) -> None:
    """Writes queued back to back share a transaction (up to `max_batch`), each in a savepoint."""
    path = tmp_path / "batch.db"
    gate = threading.Event()
    seen: list[list[int]] = []  # what another connection sees as each future resolves

    def half_then_fail(db: Connection) -> None:
        db.execute("INSERT INTO t VALUES (-1)")
        raise KeyError("half done")

    async def scenario() -> list[Any]:
        database = Database(path, setup=_schema, max_batch=max_batch)
        await database.open()
        other = connect(path)
        database.submit(lambda _: gate.wait(5))  # hold the worker: the writes queue up
        futures = [database.submit_write(_insert, value) for value in range(3)]
        futures.append(database.submit_write(half_then_fail))
        futures += [database.submit_write(_insert, value) for value in range(3, 6)]
        for future in futures:
            future.add_done_callback(lambda _: seen.append(_values(other)))
        gate.set()
        waited = (asyncio.wrap_future(future) for future in futures)
        results = await asyncio.gather(*waited, return_exceptions=True)
        await database.close()
        other.close()
        return results

    results = run(scenario())
    assert isinstance(results[3], KeyError)
    assert results[:3] + results[4:] == [0, 1, 2, 3, 4, 5]
    # Each future resolved after the commit that held its job, never before.
    assert seen[0] == first_sees
    assert seen[-1] == [0, 1, 2, 3, 4, 5]  # the failing job's row was rolled back alone


def test_a_write_cancelled_while_queued_never_runs(tmp_path: Path) -> None:
    gate = threading.Event()

    async def scenario() -> list[int]:
        database = Database(tmp_path / "d.db", setup=_schema)
        await database.open()
        database.submit(lambda _: gate.wait(5))
        kept = database.submit_write(_insert, 1)
        dropped = database.submit_write(_insert, 2)
        assert dropped.cancel()
        gate.set()
        await asyncio.wrap_future(kept)
        values = await database.run(_values)
        await database.close()
        return values

    assert run(scenario()) == [1]


def test_max_batch_is_refused_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_batch must be >= 1, got 0"):
        Database(tmp_path / "x.db", max_batch=0)


def test_a_write_delay_lets_later_writes_join_the_same_commit(tmp_path: Path) -> None:
    """Group commit: writes submitted within `write_delay` of the first share its transaction."""
    path = tmp_path / "delay.db"
    seen: list[list[int]] = []  # what another connection sees as each future resolves

    class Watched(threading.Event):
        """The worker's wake-up event: says when the worker starts the delay's wait, and
        lets the delay run out only once the test has queued its second write (on a busy
        machine a real 0.3 s could pass before the test gets there)."""

        def __init__(self) -> None:
            super().__init__()
            self.waiting = threading.Event()
            self.run_out = threading.Event()

        def wait(self, timeout: float | None = None) -> bool:
            self.waiting.set()
            self.run_out.wait(10)
            return super().wait(0)

    async def scenario() -> tuple[bool, list[int]]:
        database = Database(path, setup=_schema, write_delay=0.3)
        await database.open()
        other = connect(path)
        database._read_queued = wake = Watched()
        first = database.submit_write(_insert, 1)
        assert await asyncio.to_thread(wake.waiting.wait, 5)  # the worker is in the delay
        waiting = not first.done()  # still inside the delay
        second = database.submit_write(_insert, 2)
        wake.run_out.set()
        for future in (first, second):
            future.add_done_callback(lambda _: seen.append(_values(other)))
        await asyncio.wrap_future(second)
        values = await database.run(_values)
        await database.close()
        other.close()
        return waiting, values

    waiting, values = run(scenario())
    assert waiting and values == [1, 2]
    # One commit held both: the first future resolved only once the second was committed.
    assert seen == [[1, 2], [1, 2]]


def test_a_write_delay_does_not_hold_back_reads(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        database = Database(tmp_path / "reads.db", setup=_schema, write_delay=10)
        await database.open()
        values = await asyncio.wait_for(database.run(_values), 5)  # not 10 s
        await database.close()
        return values

    assert run(scenario()) == []


@pytest.mark.parametrize("delay", [-0.1, 11])
def test_a_write_delay_out_of_range_is_refused(tmp_path: Path, delay: float) -> None:
    with pytest.raises(ValueError, match="write_delay must be between 0 and 10 seconds"):
        Database(tmp_path / "x.db", write_delay=delay)


def test_a_read_queued_behind_a_delayed_write_ends_the_wait(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        database = Database(tmp_path / "wake.db", setup=_schema, write_delay=10)
        await database.open()
        database.submit_write(_insert, 7)
        values = await asyncio.wait_for(database.run(_values), 5)  # not 10 s
        await database.close()
        return values

    assert run(scenario()) == [7]  # and in order: the write ran first
