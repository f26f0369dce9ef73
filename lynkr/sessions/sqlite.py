"""`SQLiteSessionStore`: sessions in a SQLite file, written off the request path.

**What is stored.** Each request carries the whole conversation; only what is
new since the session's last request is written (`tables.py` says how
branches find their place). Message contents are stored once per session by
content hash (`encoding.py`).

**Turns and usage.** Each request is a turn (its new messages, then its
answer and usage: input, output, cache-read and cache-creation tokens); the
session row keeps the totals. Each call's writes are committed before it
returns (calls queued together share one transaction, each in its own
savepoint): a process killed between requests loses nothing (WAL).

The server records a turn with `snapshot` + `submit_turn`: the request is
snapshotted (and timed) when it arrives, and written together with its
answer once the answer went out — one job per turn. So turns are numbered
in the order they *finish* (parallel requests of one session, such as a
title request beside the main one, may swap numbers), a turn still running
is not listed yet, and a process killed during a turn loses that turn.
`submit_request`/`submit_answer` (and their awaitable forms `record_request`
and `record_answer`) record the two halves separately, for callers that
want the request stored at once.

**Retention.** A write deletes at most `prune_batch` sessions idle for more
than `retention_days`, and, when a new session pushes the count over
`max_sessions`, the least recently updated ones. It looks when it creates a
session, else at most every `prune_interval` seconds — at once again while
the last look found a full batch.

**Latency.** All SQLite work runs on the store's worker thread
(`lynkr.stores.Database`). The `submit_*` methods return at once (the body is
snapshotted first, so the caller may go on mutating it: a parsed body's
messages are encoded there, bytes are parsed on the worker); jobs run in
submission order, and `close()` runs every queued job before it returns.
Past `max_backlog` queued writes, new turns are skipped and counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import structlog

from lynkr.sessions.encoding import (
    USAGE_FIELDS,
    Answer,
    Messages,
    RecentRequests,
    RequestSnapshot,
    answer_parts,
    digest,
    messages_of,
    parse_messages,
    snapshot_body,
)
from lynkr.sessions.store import BacklogFull, TurnRef
from lynkr.sessions.tables import (
    ADD_USAGE,
    ANSWER_TURN,
    SCHEMA,
    TURN_USAGE,
    append_messages,
    choose_branch,
    delete_session,
    put_blob,
    session_counts,
)
from lynkr.sessions.views import list_sessions, read_session, table_stats
from lynkr.stores import Connection, Database

__all__ = [
    "DEFAULT_MAX_BACKLOG",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_PRUNE_BATCH",
    "DEFAULT_PRUNE_INTERVAL",
    "DEFAULT_RETENTION_DAYS",
    "SQLiteSessionStore",
]

DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_PRUNE_BATCH = 100
_log = structlog.get_logger("lynkr.sessions")


class _TurnFuture(Future[TurnRef]):
    """`submit_request`'s future, with the turn as soon as it is written (`written`).

    The future resolves after the commit; an answer queued behind the request may
    run in the same transaction, before that, and finds its turn here.
    """

    written: TurnRef | None = None


DEFAULT_MAX_BACKLOG = 256
DEFAULT_PRUNE_INTERVAL = 60.0


class SQLiteSessionStore:
    """Sessions in the SQLite file at `path` (see the module docstring).

    `clock` gives wall-clock seconds (retention must hold across restarts);
    it is injectable for tests. The constructor does no I/O.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
        prune_interval: float = DEFAULT_PRUNE_INTERVAL,
        clock: Callable[[], float] = time.time,
        driver_name: str | None = None,
        synchronous: str = "NORMAL",
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        write_delay: float = 0.0,
    ) -> None:
        if retention_days <= 0:
            raise ValueError(f"sessions.retention_days must be > 0, got {retention_days!r}")
        if max_sessions < 1:
            raise ValueError(f"sessions.max_sessions must be >= 1, got {max_sessions!r}")
        if prune_batch < 1:
            raise ValueError(f"sessions.prune_batch must be >= 1, got {prune_batch!r}")
        if prune_interval < 0:
            raise ValueError(f"sessions.prune_interval must be >= 0, got {prune_interval!r}")
        self.path = Path(path)
        self.retention_days = retention_days
        self.max_sessions = max_sessions
        self.prune_batch = prune_batch
        self.prune_interval = prune_interval
        self.clock = clock
        # Only the worker thread uses these two.
        self._next_prune = -math.inf  # when the next write looks for expired sessions
        # How many sessions the file holds: counted (an O(n) scan) at most once per timed
        # look, kept up to date in between, so a flood of new sessions costs no scans.
        self._sessions: int | None = None
        self._recent = RecentRequests()
        # Recording is best effort and must never cost the server its memory: past
        # `max_backlog` queued writes, new turns are skipped (and counted), not queued.
        self.max_backlog = max_backlog
        self.backlog = 0
        self._backlog_lock = threading.Lock()
        self.skipped = 0
        self.db = Database(
            path,
            setup=lambda db: db.executescript(SCHEMA),
            driver_name=driver_name,
            synchronous=synchronous,
            thread_name="lynkr-sessions",
            # Group commit (`Database`): the server batches a busy moment's turns.
            write_delay=write_delay,
        )

    async def open(self) -> None:
        """Open the file and create the tables (at startup, so a bad path fails early)."""
        await self.db.open()

    async def close(self) -> None:
        """Run every queued job (nothing submitted is lost), then close the file."""
        await self.db.close()

    # Writing -----------------------------------------------------------------

    def submit_request(
        self, session_id: str, body: Mapping[str, Any] | bytes | bytearray | memoryview
    ) -> Future[TurnRef]:
        """Queue `record_request`; returns at once. `body` is snapshotted here.

        A parsed body is cheaper than its bytes: its messages are encoded here and
        the rest of it is never looked at, where bytes must be parsed whole.
        With `max_backlog` writes already waiting, the turn is skipped: the returned
        future fails with `BacklogFull` (and `submit_answer` on it does nothing).
        """
        if self.backlog >= self.max_backlog:
            return self._skip(session_id)
        turn = _TurnFuture()
        job = self.db.submit_write(
            self._record_request, session_id, snapshot_body(body), self.clock(), turn
        )
        job.add_done_callback(self._finished("record_request", session_id, turn))
        self._count()
        return turn

    def snapshot(self, body: Mapping[str, Any]) -> RequestSnapshot:
        """What `submit_turn` needs of a request, taken when it arrives (its start time
        too); the caller may change `body` next."""
        return RequestSnapshot(messages_of(body), self.clock())

    def submit_turn(
        self,
        session_id: str,
        request: RequestSnapshot,
        answer: Callable[[], Any] | None = None,
    ) -> Future[None]:
        """Queue a whole turn as one job: the request, then its answer; returns at once.

        `answer` runs on the writer thread after the request is stored and returns
        what `submit_answer` takes (a message, or its content), or None when there
        is nothing to keep. One job instead of two means one hand-off to the
        writer per turn, and assembling the answer there keeps it off the event loop.
        """
        if self.backlog >= self.max_backlog:
            skipped: Future[None] = Future()
            skipped.set_exception(self._skip(session_id).exception() or BacklogFull())
            return skipped
        job = self.db.submit_write(self._record_turn, session_id, request, self.clock(), answer)
        job.add_done_callback(self._finished("record_turn", session_id))
        self._count()
        return job

    def _count(self) -> None:
        # Done-callbacks run on the writer thread: the count is guarded by a lock.
        with self._backlog_lock:
            self.backlog += 1

    def _finished(
        self, what: str, session_id: str, turn: Future[TurnRef] | None = None
    ) -> Callable[[Future[Any]], None]:
        """A job's done-callback: uncount it, log a failure (no one else would), tell `turn`."""

        def done(job: Future[Any]) -> None:
            with self._backlog_lock:
                self.backlog -= 1
            error = job.exception()  # never cancelled: no one else holds the job's future
            if error is not None:
                # Rolled back: the session tally may count a session that is not there
                # (runs on the writer thread, the tally's only user).
                self._sessions = None
                _log.warning(
                    "session_store_failed", job=what, session=session_id, error=repr(error)
                )
            if turn is not None and error is not None:
                turn.set_exception(error)
            elif turn is not None:
                turn.set_result(job.result())

        return done

    def _skip(self, session_id: str) -> Future[TurnRef]:
        self.skipped += 1
        if self.skipped == 1 or self.skipped % 1000 == 0:
            _log.warning(
                "sessions_backlog_full",
                skipped=self.skipped,
                max_backlog=self.max_backlog,
                session_id=session_id,
            )
        skipped: Future[TurnRef] = Future()
        skipped.set_exception(BacklogFull(f"{self.max_backlog} session writes are waiting"))
        return skipped

    def submit_answer(
        self,
        turn: TurnRef | Future[TurnRef],
        message_or_content: Any,
        usage: Mapping[str, Any] | None = None,
    ) -> Future[None]:
        """Queue `record_answer`; returns at once. `turn` may be `submit_request`'s future."""
        if isinstance(turn, Future) and turn.done() and turn.exception() is not None:
            done: Future[None] = Future()
            done.set_result(None)
            return done  # the turn itself was not recorded
        answer = answer_parts(message_or_content, usage)
        future = self.db.submit_write(self._record_answer, turn, answer, self.clock())
        session = turn.session_id if isinstance(turn, TurnRef) else "?"
        future.add_done_callback(self._finished("record_answer", session))
        self._count()
        return future

    async def record_request(
        self, session_id: str, body: Mapping[str, Any] | bytes | bytearray | memoryview
    ) -> TurnRef:
        """Store what is new in `body`'s conversation as a new turn of `session_id`."""
        snapshot = snapshot_body(body)
        return await self.db.write(self._record_request, session_id, snapshot, self.clock(), None)

    async def record_answer(
        self, turn: TurnRef, message_or_content: Any, usage: Mapping[str, Any] | None = None
    ) -> None:
        """Store a turn's answer (a message, or its content) and usage; totals follow.

        `usage` defaults to the message's own `usage`. Recording a turn twice replaces
        its answer and corrects the totals.
        """
        answer = answer_parts(message_or_content, usage)
        await self.db.write(self._record_answer, turn, answer, self.clock())

    # Reading -----------------------------------------------------------------

    async def get(self, session_id: str, *, full: bool = False) -> dict[str, Any] | None:
        """A session's turns (new messages summarised, answer, usage) and totals; None if unknown.

        `full` adds each message's whole content.
        """
        return await self.db.run(read_session, session_id, full)

    async def list(self, limit: int = 50, *, owner: str | None = None) -> list[dict[str, Any]]:
        """The `limit` most recently updated sessions of `owner` (a caller's name; None:
        the sessions of requests without one), newest first, with their totals."""
        return await self.db.run(list_sessions, max(limit, 0), owner)

    async def stats(self) -> dict[str, int]:
        """Row counts and content bytes (for tests and metrics)."""
        return await self.db.run(table_stats)

    # On the worker thread, inside a transaction --------------------------------

    def _record_request(
        self,
        db: Connection,
        session_id: str,
        snapshot: Messages | bytes,
        now: float,
        turn_future: _TurnFuture | None,
    ) -> TurnRef:
        messages = snapshot if isinstance(snapshot, Messages) else parse_messages(snapshot)
        prepared = self._recent.prepare(session_id, messages)
        turn, branches, created = session_counts(db, session_id, prepared.model, now)
        self._prune(db, session_id, now, created=created)
        branch = choose_branch(db, session_id, prepared.prefixes, branches)
        db.execute(
            "UPDATE lynkr_sessions SET updated = ?, model = COALESCE(?, model), turns = ?, "
            "branches = ? WHERE id = ?",
            (now, prepared.model, turn + 1, branches + int(branch.new), session_id),
        )
        append_messages(db, session_id, branch, turn, prepared)
        added = len(prepared.digests) - branch.start
        db.execute(
            "INSERT INTO lynkr_session_turns (session_id, turn, branch, started, model, first, "
            "added) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, turn, branch.number, now, prepared.model, branch.start, added),
        )
        ref = TurnRef(session_id, turn, branch.number, added)
        if turn_future is not None:
            turn_future.written = ref
        return ref

    def _record_turn(
        self,
        db: Connection,
        session_id: str,
        request: RequestSnapshot,
        now: float,
        answer: Callable[[], Any] | None,
    ) -> None:
        ref = self._record_request(db, session_id, request.messages, request.started, None)
        try:
            message = answer() if answer is not None else None
        except Exception as exc:  # a broken answer must not cost the request its record
            _log.warning("session_answer_failed", session=session_id, error=repr(exc))
            message = None
        if message is None:
            return
        db.execute("SAVEPOINT lynkr_answer")
        try:
            self._record_answer(db, ref, answer_parts(message, None), now)
        except Exception as exc:  # an answer that cannot be stored keeps its request
            db.execute("ROLLBACK TO lynkr_answer")
            _log.warning("session_answer_failed", session=session_id, error=repr(exc))
        db.execute("RELEASE lynkr_answer")

    def _record_answer(
        self, db: Connection, turn: TurnRef | Future[TurnRef], answer: Answer, now: float
    ) -> None:
        ref = _written(turn)
        key = digest(answer.encoded)
        put_blob(db, ref.session_id, key, answer.encoded)
        old = db.execute(TURN_USAGE, (ref.session_id, ref.turn)).fetchone()
        if old is None:
            raise LookupError(f"no turn {ref.turn} in session {ref.session_id!r}")
        new = [answer.usage.get(field, 0) for field in USAGE_FIELDS]
        db.execute(ANSWER_TURN, (key, answer.stop_reason, now, *new, ref.session_id, ref.turn))
        deltas = [n - (o or 0) for n, o in zip(new, old, strict=True)]
        db.execute(ADD_USAGE, (now, *deltas, ref.session_id))

    def _prune(self, db: Connection, keep: str, now: float, *, created: bool) -> None:
        """Delete at most `prune_batch` expired sessions, then any over `max_sessions`.

        Only when a session was created (the count may have passed `max_sessions`)
        or `prune_interval` has passed since the last look; sooner while expired
        sessions remain (the last batch was full).
        """
        timed = now >= self._next_prune
        if not created and not timed:
            return
        if timed:
            self._sessions = None  # recount: a rolled-back job may have skewed the tally
        elif self._sessions is not None:
            self._sessions += 1
        cutoff = now - self.retention_days * 86400
        rows = db.execute(
            "SELECT id FROM lynkr_sessions WHERE updated < ? AND id != ? ORDER BY updated LIMIT ?",
            (cutoff, keep, self.prune_batch),
        ).fetchall()
        full = len(rows) == self.prune_batch
        self._next_prune = now if full else now + self.prune_interval
        budget = self.prune_batch - len(rows)
        if created and budget > 0:
            if self._sessions is None:
                (self._sessions,) = db.execute("SELECT COUNT(*) FROM lynkr_sessions").fetchone()
            over = min(self._sessions - len(rows) - self.max_sessions, budget)
            if over > 0:
                rows += db.execute(
                    "SELECT id FROM lynkr_sessions WHERE updated >= ? AND id != ? "
                    "ORDER BY updated LIMIT ?",
                    (cutoff, keep, over),
                ).fetchall()
        for (session_id,) in rows:
            delete_session(db, session_id)
        if self._sessions is not None:
            self._sessions -= len(rows)


# --------------------------------------------------------------------------- worker helpers


def _written(turn: TurnRef | Future[TurnRef]) -> TurnRef:
    """The turn an answer belongs to, committed or written earlier in this transaction."""
    if isinstance(turn, TurnRef):
        return turn
    if not turn.done() and isinstance(turn, _TurnFuture) and turn.written is not None:
        return turn.written
    return turn.result(timeout=0)
