"""Opening SQLite, the one way lynkr does it (docs/architecture.md, "Where state lives").

The driver is the first of these that imports (`DRIVERS`, checked once):

* ``pysqlite3`` — pysqlite3-binary, the stdlib module's API over a bundled
  SQLite that can load extensions (sqlite-vec);
* ``apsw`` — can load extensions too; its API differs, so `connect` wraps it
  in the few DB-API calls lynkr uses (`execute` → cursor with `fetchone`/
  `fetchall`, `executescript`, `close`);
* ``sqlite3`` — the stdlib, always there; on these machines it cannot load
  extensions.

`driver()` says which loaded (`lynkr serve` can print it); `connect(path,
driver="sqlite3")` forces one. Every connection is in autocommit mode (writes
group themselves with `transaction`), in WAL mode, with a busy timeout, so
several connections and processes share one file.

`Database` is the async face: one connection owned by one dedicated worker
thread. Every statement runs there, so the event loop never waits on disk and
statements never interleave; jobs run in the order they were submitted.
`submit` returns a `concurrent.futures.Future` at once (fire and forget, still
ordered); `run` and `write` await the result. `close` runs every job already
submitted before it closes the connection, so nothing queued is lost.

Writes queued back to back share one transaction (at most `max_batch`): a
commit costs more than a small write (every page it touched goes to the
WAL), and a burst of writes touches the same few pages. Each job runs in its
own savepoint, so one that raises is rolled back and fails alone; every
future resolves only after the commit that holds its job.

Durability: `synchronous=NORMAL` in WAL mode keeps every committed
transaction when the *process* dies (SIGKILL included); only an OS crash or
power loss can lose the last ones. `synchronous="FULL"` closes that too, at a
cost per commit.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

__all__ = [
    "DRIVERS",
    "Connection",
    "Cursor",
    "Database",
    "Driver",
    "connect",
    "driver",
    "load_extension",
    "transaction",
]

# Tried in this order; the first that imports is used (a name → module table).
DRIVERS: dict[str, str] = {
    "pysqlite3": "pysqlite3.dbapi2",
    "apsw": "apsw",
    "sqlite3": "sqlite3",
}
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Cursor(Protocol):
    """What lynkr reads from a statement, the same for every driver."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The DB-API subset lynkr uses, the same for every driver."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...

    def executescript(self, script: str, /) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Driver:
    """A loaded driver: its name, module, SQLite version and whether it can load extensions."""

    name: str
    module: ModuleType
    sqlite_version: str
    loads_extensions: bool


_loaded: dict[str, Driver] = {}
_lock = threading.Lock()


def driver(name: str | None = None) -> Driver:
    """The driver `name`, or the first of `DRIVERS` that imports; raises `ValueError`."""
    with _lock:
        if name is not None:
            return _loaded.get(name) or _load(name)
        for candidate in DRIVERS:
            try:
                return _loaded.get(candidate) or _load(candidate)
            except ImportError:
                continue
    raise ImportError("no SQLite driver imports (not even the stdlib sqlite3)")  # pragma: no cover


def _load(name: str) -> Driver:
    if name not in DRIVERS:
        known = ", ".join(DRIVERS)
        raise ValueError(f"unknown SQLite driver {name!r}; known: {known}")
    module = importlib.import_module(DRIVERS[name])
    if name == "apsw":
        version = module.sqlite_lib_version()
        loads = hasattr(module.Connection, "enable_load_extension")
    else:
        version = module.sqlite_version
        loads = hasattr(module.Connection, "enable_load_extension")
    found = Driver(name, module, version, loads)
    _loaded[name] = found
    return found


def connect(
    path: str | Path,
    *,
    driver_name: str | None = None,
    busy_timeout: float = 5.0,
    synchronous: str = "NORMAL",
) -> Connection:
    """A connection to the file at `path` (created with its directory), autocommit, WAL.

    Usable from one thread at a time, not necessarily the one that opened it.
    """
    if synchronous.upper() not in _SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}: {synchronous!r}")
    loaded = driver(driver_name)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if loaded.name == "apsw":
        connection: Connection = _APSWConnection(loaded.module, str(path), busy_timeout)
    else:
        connection = loaded.module.connect(
            str(path), isolation_level=None, timeout=busy_timeout, check_same_thread=False
        )
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    _use_wal(connection, busy_timeout)
    connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def _use_wal(connection: Connection, busy_timeout: float) -> None:
    """Switch to WAL unless the file already is (switching needs a lock no busy handler waits for).

    Two connections opening a new file at once race for that lock; the loser
    retries briefly instead of failing.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()
            if mode and str(mode[0]).lower() == "wal":
                return
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # each driver has its own "busy" exception
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class _APSWConnection:
    """apsw behind the DB-API subset of `Connection` (apsw is always in autocommit)."""

    def __init__(self, apsw: ModuleType, path: str, busy_timeout: float) -> None:
        self._connection = apsw.Connection(path)
        self._connection.setbusytimeout(int(busy_timeout * 1000))

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        cursor: Cursor = self._connection.execute(sql, tuple(parameters))
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any:
        return self._connection.executemany(sql, [tuple(row) for row in rows])

    def executescript(self, script: str, /) -> Any:
        return self._connection.execute(script).fetchall()

    def close(self) -> None:
        self._connection.close()


def load_extension(connection: Connection, path: str) -> None:
    """Load the SQLite extension at `path` (e.g. sqlite-vec) into `connection`.

    Raises `RuntimeError` naming the driver when it cannot load extensions
    (the stdlib `sqlite3` of many Python builds): install `pysqlite3-binary`
    or `apsw`, which can.
    """
    raw: Any = getattr(connection, "_connection", connection)  # apsw's, behind its wrapper
    enable = getattr(raw, "enable_load_extension", None)
    if enable is None:
        raise RuntimeError(
            "this SQLite driver cannot load extensions; install pysqlite3-binary or apsw"
        )
    enable(True)
    try:
        raw.load_extension(path)
    finally:
        enable(False)


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` when the block or the commit raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        _rollback(connection)
        raise


def _rollback(connection: Connection) -> None:
    try:
        connection.execute("ROLLBACK")
    except Exception:  # SQLite rolled back already (a full disk, an I/O error): keep that error
        return


@dataclass(slots=True)
class _Job:
    """A queued `job(connection, *args, **kwargs)` and the future its outcome goes to."""

    future: Future[Any]
    job: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    write: bool

    def __call__(self, connection: Connection) -> Any:
        return self.job(connection, *self.args, **self.kwargs)


class Database:
    """One SQLite file, one connection, one worker thread (see the module docstring).

    `setup` runs once on the worker thread right after connecting (create the
    schema there). `max_batch` bounds the writes one transaction holds, so a
    long backlog still commits (and lets other connections write) every few
    milliseconds; 1 gives every write its own. `write_delay` (seconds, 0 by
    default) makes the worker wait that long before it starts on a write, so
    the writes submitted meanwhile share its transaction (group commit: one
    commit, and one thread hand-off, for many writes); their futures resolve
    that much later, and a process killed in that window loses them. The
    constructor does no I/O; the file is opened by `open` or by the first job.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        setup: Callable[[Connection], None] | None = None,
        driver_name: str | None = None,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        thread_name: str = "lynkr-sqlite",
        max_batch: int = 64,
        write_delay: float = 0.0,
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}: {synchronous!r}"
            )
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch!r}")
        if not 0 <= write_delay <= 10:
            raise ValueError(f"write_delay must be between 0 and 10 seconds, got {write_delay!r}")
        self.path = Path(path)
        self.setup = setup
        self.driver_name = driver_name
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self.thread_name = thread_name
        self.max_batch = max_batch
        self.write_delay = write_delay
        self._executor: ThreadPoolExecutor | None = None
        self._connection: Connection | None = None
        self._closed = False
        # The queue the worker drains. `_draining` says a drain is scheduled or
        # running, so a job queued meanwhile costs no thread hand-off of its own.
        self._jobs: deque[_Job] = deque()
        self._lock = threading.Lock()
        self._draining = False
        self._read_queued = threading.Event()

    @property
    def driver(self) -> Driver:
        """The driver this database uses (or will use when it opens)."""
        return driver(self.driver_name)

    async def open(self) -> None:
        """Open the file now, so a bad path or a locked file fails at startup, not mid-request."""
        await self.run(lambda _: None)

    def submit(
        self, job: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_T]:
        """Queue `job(connection, *args)` on the worker thread; returns at once."""
        return self._queue(_Job(Future(), job, args, kwargs, write=False))

    def submit_write(
        self, job: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_T]:
        """`submit`, with the job inside a transaction, committed before its future resolves."""
        return self._queue(_Job(Future(), job, args, kwargs, write=True))

    async def run(
        self, job: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run `job(connection, *args)` on the worker thread and await its result."""
        return await asyncio.wrap_future(self.submit(job, *args, **kwargs))

    async def write(
        self, job: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """`run`, inside a transaction."""
        return await asyncio.wrap_future(self.submit_write(job, *args, **kwargs))

    async def close(self) -> None:
        """Finish every job already submitted, then close the connection and the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is None:
            return
        # Behind the drain that holds every queued job: the worker runs tasks in order.
        await asyncio.wrap_future(executor.submit(self._close))
        await asyncio.to_thread(executor.shutdown, wait=True)

    def _queue(self, job: _Job) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the database {self.path.name} is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=self.thread_name
                )
            self._schedule(job, self._executor)
        return job.future

    def _schedule(self, job: _Job, executor: ThreadPoolExecutor) -> None:
        """Queue `job`, waking the worker unless a drain will reach it (holding `_lock`)."""
        self._jobs.append(job)
        if not job.write:
            self._read_queued.set()
        if not self._draining:
            self._draining = True
            executor.submit(self._drain)

    # On the worker thread ------------------------------------------------------

    def _drain(self) -> None:
        """Run queued jobs in order until none is left: consecutive writes together."""
        if self.write_delay and self._should_wait():
            # Group commit: let the writes of the next moments join this transaction.
            # A read queued meanwhile ends the wait (`_schedule`): reads never wait it out.
            self._read_queued.wait(self.write_delay)
        while batch := self._take():
            if batch[0].write:
                self._write(batch)
            else:
                _settle(batch[0], self._db)

    def _should_wait(self) -> bool:
        """Whether the queue holds only writes (and at least one)."""
        with self._lock:
            self._read_queued.clear()
            return bool(self._jobs) and all(job.write for job in self._jobs)

    def _take(self) -> list[_Job]:
        """The next job, or the next writes (up to `max_batch`); [] when the queue is empty."""
        batch: list[_Job] = []
        with self._lock:
            while self._jobs and len(batch) < self.max_batch:
                if batch and not (batch[0].write and self._jobs[0].write):
                    break
                job = self._jobs.popleft()
                if job.future.set_running_or_notify_cancel():  # False: cancelled while queued
                    batch.append(job)
            if not batch and not self._jobs:
                self._draining = False
        return batch

    def _write(self, batch: list[_Job]) -> None:
        """Run `batch` in one transaction; resolve its futures once it is committed."""
        try:
            connection = self._db()
            with transaction(connection):
                if len(batch) == 1:
                    outcomes = [(True, batch[0](connection))]
                else:
                    outcomes = [_in_savepoint(connection, job) for job in batch]
        except BaseException as error:  # the transaction is rolled back: every job failed
            for job in batch:
                job.future.set_exception(error)
            return
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _db(self) -> Connection:
        if self._connection is None:
            connection = connect(
                self.path,
                driver_name=self.driver_name,
                busy_timeout=self.busy_timeout,
                synchronous=self.synchronous,
            )
            try:
                if self.setup is not None:
                    self.setup(connection)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _settle(job: _Job, connection: Callable[[], Connection]) -> None:
    """Run a job outside any transaction and resolve its future."""
    try:
        result = job(connection())
    except BaseException as error:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)


def _in_savepoint(connection: Connection, job: _Job) -> tuple[bool, Any]:
    """(True, result), or (False, error) with the job's writes rolled back."""
    connection.execute("SAVEPOINT lynkr_job")
    try:
        result = job(connection)
    except Exception as error:
        try:
            connection.execute("ROLLBACK TO lynkr_job")
            connection.execute("RELEASE lynkr_job")
        except Exception:
            # SQLite already ended the whole transaction (a full disk, an I/O error):
            # the batch fails, with the job's own error rather than "no such savepoint".
            raise error from None
        return False, error
    connection.execute("RELEASE lynkr_job")
    return True, result
