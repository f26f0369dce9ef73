"""Sessions: every conversation's turns and token usage, stored incrementally in SQLite.

**Which session.** `derive_session_id` (pure): Claude Code's own id (the
`x-claude-code-session-id` header, else `metadata.user_id`'s session_id,
PROTOCOL.md A.3/A.4), else `conversation_fingerprint` of the first user message
and the system head — the same for every request of one conversation, never a
random id per request.

**What is stored.** Each request carries the whole conversation; only what is
new since the session's last request is written. A session holds *branches*:
a branch is a conversation the client has sent, kept as its `length` and the
rolling hash of its messages (`head`: hash(previous head + hash(message))).
A request continues the branch whose head equals the rolling hash of its own
first `length` messages (the longest such branch; only the request's own
rolling hashes are looked up, so a session with thousands of branches costs
no more than one with a few) and appends the rest. When
no branch fits — the client edited, rewound or compacted the history, or a
side request (a title, say) shares the session id — a new branch starts from
the longest stored prefix it shares (found by binary search over the stored
rolling hashes) and stores only the rest. Nothing is duplicated or
overwritten, so storage grows linearly with the turns.

Message contents are stored once per session by content hash (`blobs`),
without `cache_control` (Claude Code moves that marker every turn, A.4): the
assistant answer recorded after a turn and the same message echoed back in
the next request are one row. A message is encoded by orjson as it is and the
markers are cut from the bytes (`encode_messages`), the same bytes as
encoding `canonical_message`'s copy, for a fraction of the CPU.

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
`submit_request`/`submit_answer` (and their awaitable forms) record the two
halves separately, for callers that want the request stored at once.

**Retention.** A `record_request` deletes at most `prune_batch` sessions
idle for more than `retention_days`, and, when a new session pushes the
count over `max_sessions`, the least recently updated ones. It looks when it
creates a session, else at most every `prune_interval` seconds — at once
again while the last look found a full batch.

**Latency.** All SQLite work runs on the store's worker thread
(`lynkr.stores.Database`). The `submit_*` methods return at once (the body is
snapshotted first, so the caller may go on mutating it: a parsed body's
messages are encoded there, bytes are parsed on the worker); jobs run in
submission order, and `close()` runs every queued job before it returns.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import structlog

from lynkr.asgi import Receive, Scope, Send, api_path, send_error, send_json
from lynkr.errors import NotFound, PermissionDenied
from lynkr.protocol import claude_code_session_id, conversation_fingerprint
from lynkr.stores import Connection, Database

__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_RETENTION_DAYS",
    "USAGE_FIELDS",
    "RequestSnapshot",
    "SessionStore",
    "SessionsEndpoint",
    "TurnRef",
    "derive_session_id",
]

DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_PRUNE_BATCH = 100
# Anthropic's usage field → the column that keeps it.
USAGE_FIELDS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_creation_tokens",
}
_SUMMARY_CHARS = 200
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_log = structlog.get_logger("lynkr.sessions")
# Claude Code's session header (PROTOCOL.md A.3), the only header `derive_session_id` needs.
_SESSION_HEADER_NAME = "x-claude-code-session-id"
_SESSION_HEADER = _SESSION_HEADER_NAME.encode("ascii")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lynkr_sessions (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    model TEXT,
    turns INTEGER NOT NULL DEFAULT 0,
    branches INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS lynkr_sessions_updated ON lynkr_sessions (updated);
CREATE TABLE IF NOT EXISTS lynkr_session_branches (
    session_id TEXT NOT NULL,
    branch INTEGER NOT NULL,
    parent INTEGER,
    fork INTEGER NOT NULL,
    length INTEGER NOT NULL,
    head TEXT NOT NULL,
    PRIMARY KEY (session_id, branch)
);
CREATE INDEX IF NOT EXISTS lynkr_session_branches_head
    ON lynkr_session_branches (session_id, head);
CREATE TABLE IF NOT EXISTS lynkr_session_messages (
    session_id TEXT NOT NULL,
    branch INTEGER NOT NULL,
    position INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    role TEXT NOT NULL,
    digest TEXT NOT NULL,
    prefix TEXT NOT NULL,
    PRIMARY KEY (session_id, branch, position)
);
CREATE INDEX IF NOT EXISTS lynkr_session_messages_prefix
    ON lynkr_session_messages (session_id, prefix);
CREATE TABLE IF NOT EXISTS lynkr_session_blobs (
    session_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    content BLOB NOT NULL,
    UNIQUE (session_id, digest)
);
CREATE TABLE IF NOT EXISTS lynkr_session_turns (
    session_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    branch INTEGER NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    model TEXT,
    first INTEGER NOT NULL,
    added INTEGER NOT NULL,
    answer TEXT,
    stop_reason TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_creation_tokens INTEGER,
    PRIMARY KEY (session_id, turn)
);
"""
_TABLES = (
    "lynkr_session_turns",
    "lynkr_session_blobs",
    "lynkr_session_messages",
    "lynkr_session_branches",
)


# --------------------------------------------------------------------------- session id


def derive_session_id(
    headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]], body: Mapping[str, Any] | None
) -> str:
    """The session of a request: Claude Code's id, else a fingerprint of the conversation.

    `headers` is a mapping with lower-case names or the ASGI `scope["headers"]` list.
    """
    if not isinstance(headers, Mapping):
        headers = _session_header(headers)
    return claude_code_session_id(headers, body) or conversation_fingerprint(body or {})


def _session_header(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The one header `claude_code_session_id` reads, from an ASGI list (no other is decoded)."""
    found: dict[str, str] = {}
    for name, value in raw:
        # ASGI servers send lower-case names, callers may not: only a name of the
        # right length is lower-cased. The last one wins, as in a dict.
        if len(name) == len(_SESSION_HEADER) and name.lower() == _SESSION_HEADER:
            found = {_SESSION_HEADER_NAME: value.decode("latin-1")}
    return found


# --------------------------------------------------------------------------- hashing (pure)


def canonical_message(message: Any) -> dict[str, Any]:
    """`{"role", "content": [blocks]}` with string content as one text block, no cache_control."""
    if not isinstance(message, Mapping):
        return {"role": "unknown", "content": [{"type": "json", "value": message}]}
    content = message.get("content")
    if isinstance(content, str):
        blocks: Any = [{"type": "text", "text": content}]
    else:
        blocks = _without_cache_control(content if content is not None else [])
    return {"role": str(message.get("role", "unknown")), "content": blocks}


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):  # orjson encodes both as arrays
        return [_without_cache_control(item) for item in value]
    return value


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_SORTED = orjson.OPT_SORT_KEYS


def _encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message, option=_SORTED)


# A JSON value `"cache_control"` may hold without nesting: an object of scalars, a
# string or a scalar. Strings are matched whole, so a brace inside one is not a brace.
_STRING = rb'"(?:[^"\\]|\\.)*"'
_FLAT_VALUE = rb"(?:\{(?:[^\"{}\[\]]|" + _STRING + rb")*\}|" + _STRING + rb'|[^",{}\[\]]+)'
# In compact JSON an unescaped quote right after `,` or `{` opens a key, so these match
# only `cache_control` keys: not first in their object (the comma goes), or first
# (the comma after it goes, if any). No string content can match.
_CACHE_CONTROL = re.compile(
    rb',"cache_control":'
    + _FLAT_VALUE
    + rb'|(?<=\{)"cache_control":'
    + _FLAT_VALUE
    + rb"(?:,|(?=\}))",
    re.DOTALL,
)
_MARKER = b'"cache_control"'
_MARKER_KEY = b'"cache_control":'
# The end of a canonical message of a common role: `"role"` sorts after `"content"`.
_ROLE_ENDS = {role: b',"role":"' + role.encode() + b'"}' for role in ("user", "assistant")}


def encode_message(message: Any) -> bytes:
    """`canonical_message(message)` encoded with sorted keys: the bytes hashed and stored."""
    return encode_messages([message])[0]


def encode_messages(messages: Sequence[Any]) -> list[bytes]:
    """`encode_message` of each message, without building their canonical copies.

    Each content is encoded as it is (orjson, in C) and the `cache_control` keys
    are cut from the bytes afterwards: the same bytes as encoding the copy
    `canonical_message` makes, at a fraction of the cost. The markers are looked
    for once in all the messages together (one long search is much faster than
    many short ones), and only the messages that have one are cut.
    """
    encoded = [_encode_marked(message) for message in messages]
    joined = b"".join(encoded)
    found = joined.find(_MARKER)
    if found < 0:
        return encoded
    ends = list(accumulate(map(len, encoded)))
    while found >= 0:
        index = bisect_right(ends, found)
        if isinstance(messages[index], dict):  # else canonical already: the marker is content
            encoded[index] = _cut_markers(encoded[index], messages[index])
        found = joined.find(_MARKER, ends[index])
    return encoded


def _encode_marked(message: Any) -> bytes:
    """`canonical_message(message)` encoded, but a dict's `cache_control` markers still in."""
    if not isinstance(message, dict):
        return _encode(canonical_message(message))
    content = message.get("content")
    role = message.get("role", "unknown")
    try:
        if isinstance(content, list) and type(role) is str and role in _ROLE_ENDS:
            return b'{"content":' + orjson.dumps(content, option=_SORTED) + _ROLE_ENDS[role]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        return _encode({"role": str(role), "content": [] if content is None else content})
    except TypeError:  # what orjson cannot encode as given: the slow path copies or refuses it
        return _encode(canonical_message(message))


def _cut_markers(encoded: bytes, message: Any) -> bytes:
    """`encoded` without its `cache_control` keys; a nested value takes the slow path."""
    cut = _CACHE_CONTROL.sub(b"", encoded)
    return _encode(canonical_message(message)) if _MARKER_KEY in cut else cut


@dataclass(frozen=True, slots=True)
class _Messages:
    """A request's messages encoded (bytes and strings only: a snapshot) and its model."""

    roles: list[str]
    encoded: list[bytes]
    model: str | None


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """A request as `SessionStore.snapshot` took it: its messages and when it arrived."""

    messages: _Messages
    started: float


def _messages(body: Mapping[str, Any]) -> _Messages:
    messages = body.get("messages")
    if not isinstance(messages, list):
        messages = []
    roles = [
        str(m.get("role", "unknown")) if isinstance(m, Mapping) else "unknown" for m in messages
    ]
    model = body.get("model")
    return _Messages(roles, encode_messages(messages), model if isinstance(model, str) else None)


def _parse(raw: bytes) -> _Messages:
    body = orjson.loads(raw)
    return _messages(body if isinstance(body, dict) else {})


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A request's messages, canonical, with each one's digest and rolling prefix hash."""

    roles: list[str]
    encoded: list[bytes]
    digests: list[str]
    prefixes: list[str]
    model: str | None


def _prepare(messages: _Messages, last: _Prepared | None = None) -> _Prepared:
    """Hash `messages`, reusing `last`'s hashes for the leading messages both have."""
    same = _common_prefix(messages.encoded, last.encoded) if last is not None else 0
    digests = last.digests[:same] if last is not None else []
    prefixes = last.prefixes[:same] if last is not None else []
    head = prefixes[-1] if prefixes else ""
    for data in messages.encoded[same:]:
        digest = _digest(data)
        head = _digest((head + digest).encode("ascii"))
        digests.append(digest)
        prefixes.append(head)
    return _Prepared(messages.roles, messages.encoded, digests, prefixes, messages.model)


def _common_prefix(new: list[bytes], old: list[bytes]) -> int:
    same = 0
    for one, other in zip(new, old, strict=False):
        if one != other:
            break
        same += 1
    return same


_INT64_MAX = 2**63 - 1
_RECENT_BYTES = 8 * 2**20
_RECENT_SESSIONS = 1024
# Approximate bytes of Python objects besides the encoded messages (see `_Recent.prepare`).
_PER_MESSAGE = 300
_PER_ENTRY = 4096


class _Recent:
    """Recent sessions' last prepared requests, at most `budget` bytes of messages.

    A request resends its conversation, and hashing it is most of what preparing
    costs: where a message's bytes equal the last request's, so do its digest and
    rolling hash. They are pure functions of the bytes, so this can never go
    stale, whatever else writes to the file. Used on the worker thread only.
    """

    def __init__(self, budget: int, max_sessions: int = _RECENT_SESSIONS) -> None:
        self.budget = budget
        self.max_sessions = max_sessions
        self.size = 0
        self._last: dict[str, tuple[_Prepared, int]] = {}  # least recently used first

    def prepare(self, session_id: str, messages: _Messages) -> _Prepared:
        last, size = self._last.pop(session_id, (None, 0))
        self.size -= size
        prepared = _prepare(messages, last)
        # What an entry really holds: the messages' bytes, and per message a digest, a
        # rolling hash and list slots; per entry, the objects around them. Counting the
        # bytes alone let a flood of one-message sessions grow far past the budget.
        size = sum(map(len, prepared.encoded)) + _PER_MESSAGE * len(prepared.encoded)
        size += _PER_ENTRY
        if size <= self.budget:
            self._last[session_id] = prepared, size
            self.size += size
        while self.size > self.budget or len(self._last) > self.max_sessions:
            self.size -= self._last.pop(next(iter(self._last)))[1]
        return prepared


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True)
class TurnRef:
    """One stored turn: pass it to `record_answer`."""

    session_id: str
    turn: int
    branch: int
    added: int


class BacklogFull(RuntimeError):
    """A turn was not recorded: too many session writes were already waiting."""


class _TurnFuture(Future[TurnRef]):
    """`submit_request`'s future, with the turn as soon as it is written (`written`).

    The future resolves after the commit; an answer queued behind the request may
    run in the same transaction, before that, and finds its turn here.
    """

    written: TurnRef | None = None


DEFAULT_MAX_BACKLOG = 256
DEFAULT_PRUNE_INTERVAL = 60.0
# Messages kept to reuse their hashes (`_Recent`): a dozen long conversations.


class SessionStore:
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
        self._recent = _Recent(_RECENT_BYTES)
        # Recording is best effort and must never cost the server its memory: past
        # `max_backlog` queued writes, new turns are skipped (and counted), not queued.
        self.max_backlog = max_backlog
        self.backlog = 0
        self._backlog_lock = threading.Lock()
        self.skipped = 0
        self.db = Database(
            path,
            setup=lambda db: db.executescript(_SCHEMA),
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
            self._record_request, session_id, _snapshot(body), self.clock(), turn
        )
        job.add_done_callback(self._finished("record_request", session_id, turn))
        self._count()
        return turn

    def snapshot(self, body: Mapping[str, Any]) -> RequestSnapshot:
        """What `submit_turn` needs of a request, taken when it arrives (its start time
        too); the caller may change `body` next."""
        return RequestSnapshot(_messages(body), self.clock())

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
        answer = _answer_parts(message_or_content, usage)
        future = self.db.submit_write(self._record_answer, turn, answer, self.clock())
        session = turn.session_id if isinstance(turn, TurnRef) else "?"
        future.add_done_callback(self._finished("record_answer", session))
        self._count()
        return future

    async def record_request(
        self, session_id: str, body: Mapping[str, Any] | bytes | bytearray | memoryview
    ) -> TurnRef:
        """Store what is new in `body`'s conversation as a new turn of `session_id`."""
        snapshot = _snapshot(body)
        return await self.db.write(self._record_request, session_id, snapshot, self.clock(), None)

    async def record_answer(
        self, turn: TurnRef, message_or_content: Any, usage: Mapping[str, Any] | None = None
    ) -> None:
        """Store a turn's answer (a message, or its content) and usage; totals follow.

        `usage` defaults to the message's own `usage`. Recording a turn twice replaces
        its answer and corrects the totals.
        """
        answer = _answer_parts(message_or_content, usage)
        await self.db.write(self._record_answer, turn, answer, self.clock())

    # Reading -----------------------------------------------------------------

    async def get(self, session_id: str, *, full: bool = False) -> dict[str, Any] | None:
        """A session's turns (new messages summarised, answer, usage) and totals; None if unknown.

        `full` adds each message's whole content.
        """
        return await self.db.run(_read_session, session_id, full)

    async def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """The `limit` most recently updated sessions, newest first, with their totals."""
        return await self.db.run(_list_sessions, max(limit, 0))

    async def stats(self) -> dict[str, int]:
        """Row counts and content bytes (for tests and metrics)."""
        return await self.db.run(_stats)

    # On the worker thread, inside a transaction --------------------------------

    def _record_request(
        self,
        db: Connection,
        session_id: str,
        snapshot: _Messages | bytes,
        now: float,
        turn_future: _TurnFuture | None,
    ) -> TurnRef:
        messages = snapshot if isinstance(snapshot, _Messages) else _parse(snapshot)
        prepared = self._recent.prepare(session_id, messages)
        turn, branches, created = _session_counts(db, session_id, prepared.model, now)
        self._prune(db, session_id, now, created=created)
        branch = _choose_branch(db, session_id, prepared.prefixes, branches)
        db.execute(
            "UPDATE lynkr_sessions SET updated = ?, model = COALESCE(?, model), turns = ?, "
            "branches = ? WHERE id = ?",
            (now, prepared.model, turn + 1, branches + int(branch.new), session_id),
        )
        _append(db, session_id, branch, turn, prepared)
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
            self._record_answer(db, ref, _answer_parts(message, None), now)
        except Exception as exc:  # an answer that cannot be stored keeps its request
            db.execute("ROLLBACK TO lynkr_answer")
            _log.warning("session_answer_failed", session=session_id, error=repr(exc))
        db.execute("RELEASE lynkr_answer")

    def _record_answer(
        self, db: Connection, turn: TurnRef | Future[TurnRef], answer: _Answer, now: float
    ) -> None:
        ref = _written(turn)
        digest = _digest(answer.encoded)
        _put_blob(db, ref.session_id, digest, answer.encoded)
        old = db.execute(_TURN_USAGE, (ref.session_id, ref.turn)).fetchone()
        if old is None:
            raise LookupError(f"no turn {ref.turn} in session {ref.session_id!r}")
        new = [answer.usage.get(field, 0) for field in USAGE_FIELDS]
        db.execute(_ANSWER_TURN, (digest, answer.stop_reason, now, *new, ref.session_id, ref.turn))
        deltas = [n - (o or 0) for n, o in zip(new, old, strict=True)]
        db.execute(_ADD_USAGE, (now, *deltas, ref.session_id))

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
            _delete_session(db, session_id)
        if self._sessions is not None:
            self._sessions -= len(rows)


# --------------------------------------------------------------------------- worker helpers

_USAGE_COLUMNS = tuple(USAGE_FIELDS.values())
_TURN_USAGE = (
    f"SELECT {', '.join(_USAGE_COLUMNS)} FROM lynkr_session_turns WHERE session_id = ? AND turn = ?"
)
_ANSWER_TURN = (
    "UPDATE lynkr_session_turns SET answer = ?, stop_reason = ?, ended = ?, "
    + ", ".join(f"{c} = ?" for c in _USAGE_COLUMNS)
    + " WHERE session_id = ? AND turn = ?"
)
_ADD_USAGE = (
    "UPDATE lynkr_sessions SET updated = ?, "
    + ", ".join(f"{c} = {c} + ?" for c in _USAGE_COLUMNS)
    + " WHERE id = ?"
)
# Branch heads looked up at once: first the request's last few rolling hashes (a
# continued conversation matches there), then wider chunks under SQLite's smallest
# bound-parameter limit (999). Fixed sizes keep the statements in the driver's cache.
_FIRST_HEADS = 32
_MORE_HEADS = 512


def _heads_query(size: int) -> str:
    return (
        "SELECT branch, length, head FROM lynkr_session_branches WHERE session_id = ? "
        f"AND head IN ({', '.join('?' * size)}) ORDER BY length DESC, branch DESC"
    )


_HEADS_QUERIES = {size: _heads_query(size) for size in (_FIRST_HEADS, _MORE_HEADS)}


@dataclass(frozen=True, slots=True)
class _Answer:
    encoded: bytes
    stop_reason: str | None
    usage: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Branch:
    """Where a request's new messages go: on `number`, from position `start`.

    `new` branches are not stored yet: they fork from `parent` at `start`.
    """

    number: int
    start: int
    new: bool = False
    parent: int | None = None


def _snapshot(body: Mapping[str, Any] | bytes | bytearray | memoryview) -> _Messages | bytes:
    """What the worker thread needs of the body, whatever the caller does with it next.

    Bytes are copied and parsed on the worker; a parsed body is encoded here, once.
    """
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    return _messages(body)


def _answer_parts(message_or_content: Any, usage: Mapping[str, Any] | None) -> _Answer:
    """Snapshot an answer: a message dict, a content list or a string; usage as integers.

    The message is encoded here, so the caller may reuse its objects at once.
    """
    stop_reason = None
    if isinstance(message_or_content, Mapping) and "content" in message_or_content:
        content = message_or_content.get("content")
        stop_reason = message_or_content.get("stop_reason")
        if usage is None and isinstance(message_or_content.get("usage"), Mapping):
            usage = message_or_content["usage"]
    else:
        content = message_or_content
    encoded = encode_message({"role": "assistant", "content": content})
    counts = {
        field: min(max(int(value), 0), _INT64_MAX)  # SQLite integers are 64-bit
        for field, value in (usage or {}).items()
        if field in USAGE_FIELDS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
    return _Answer(encoded, stop_reason if isinstance(stop_reason, str) else None, counts)


def _written(turn: TurnRef | Future[TurnRef]) -> TurnRef:
    """The turn an answer belongs to, committed or written earlier in this transaction."""
    if isinstance(turn, TurnRef):
        return turn
    if not turn.done() and isinstance(turn, _TurnFuture) and turn.written is not None:
        return turn.written
    return turn.result(timeout=0)


def _session_counts(
    db: Connection, session_id: str, model: str | None, now: float
) -> tuple[int, int, bool]:
    """The session's turn and branch counts, creating its row: (turns, branches, created)."""
    row = db.execute(
        "SELECT turns, branches FROM lynkr_sessions WHERE id = ?", (session_id,)
    ).fetchone()
    if row is not None:
        return int(row[0]), int(row[1]), False
    db.execute(
        "INSERT INTO lynkr_sessions (id, created, updated, model) VALUES (?, ?, ?, ?)",
        (session_id, now, now, model),
    )
    return 0, 0, True


def _choose_branch(
    db: Connection, session_id: str, prefixes: Sequence[str], branches: int
) -> _Branch:
    """The branch the request continues, or a new one (numbered `branches`) from its fork."""
    found = _continued_branch(db, session_id, prefixes)
    if found is not None:
        return found
    parent, fork = _longest_stored_prefix(db, session_id, prefixes)
    return _Branch(branches, fork, new=True, parent=parent)


def _continued_branch(db: Connection, session_id: str, prefixes: Sequence[str]) -> _Branch | None:
    """The longest branch whose head is one of the request's rolling hashes ("" if empty).

    Only those heads are looked up (an index on (session_id, head)), longest first,
    so a session with thousands of branches costs no more than one with a few.
    """
    total = len(prefixes)
    heads = [*reversed(prefixes), ""]
    begin, size = 0, _FIRST_HEADS
    while begin < len(heads):
        chunk = heads[begin : begin + size]
        chunk += [chunk[-1]] * (size - len(chunk))
        rows = db.execute(_HEADS_QUERIES[size], (session_id, *chunk)).fetchall()
        for branch, length, head in rows:
            # Equal heads mean equal prefixes; the length check guards the impossible.
            if length <= total and head == (prefixes[length - 1] if length else ""):
                return _Branch(int(branch), int(length))
        begin, size = begin + size, _MORE_HEADS
    return None


def _longest_stored_prefix(
    db: Connection, session_id: str, prefixes: Sequence[str]
) -> tuple[int | None, int]:
    """(branch holding it, length) of the longest prefix of `prefixes` stored in any branch.

    A rolling hash stored at position i means positions < i are stored too, so
    "is prefix i stored?" is monotone and a binary search needs log2(n) lookups.
    The first split is just before the last message: a side request or a retry
    usually differs from a stored conversation only there.
    """
    low, high, found = 0, len(prefixes), None
    middle = max(high - 1, 1)
    while low < high:
        row = db.execute(
            "SELECT branch FROM lynkr_session_messages WHERE session_id = ? AND prefix = ? LIMIT 1",
            (session_id, prefixes[middle - 1]),
        ).fetchone()
        if row is None:
            high = middle - 1
        else:
            low, found = middle, int(row[0])
        middle = (low + high + 1) // 2
    return found, low


def _append(
    db: Connection, session_id: str, branch: _Branch, turn: int, prepared: _Prepared
) -> None:
    """Store the request's messages from `branch.start` on and move (or create) the branch."""
    total = len(prepared.digests)
    for position in range(branch.start, total):
        digest = prepared.digests[position]
        _put_blob(db, session_id, digest, prepared.encoded[position])
        db.execute(
            "INSERT INTO lynkr_session_messages "
            "(session_id, branch, position, turn, role, digest, prefix) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                branch.number,
                position,
                turn,
                prepared.roles[position],
                digest,
                prepared.prefixes[position],
            ),
        )
    head = prepared.prefixes[total - 1] if total else ""
    if branch.new:
        db.execute(
            "INSERT INTO lynkr_session_branches (session_id, branch, parent, fork, length, head) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, branch.number, branch.parent, branch.start, total, head),
        )
    elif total > branch.start:
        db.execute(
            "UPDATE lynkr_session_branches SET length = ?, head = ? "
            "WHERE session_id = ? AND branch = ?",
            (total, head, session_id, branch.number),
        )


def _put_blob(db: Connection, session_id: str, digest: str, content: bytes) -> None:
    db.execute(
        "INSERT OR IGNORE INTO lynkr_session_blobs (session_id, digest, content) VALUES (?, ?, ?)",
        (session_id, digest, content),
    )


def _delete_session(db: Connection, session_id: str) -> None:
    for table in _TABLES:
        db.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
    db.execute("DELETE FROM lynkr_sessions WHERE id = ?", (session_id,))


# --------------------------------------------------------------------------- reading


def _read_session(db: Connection, session_id: str, full: bool) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT id, created, updated, model, turns, branches, input_tokens, output_tokens, "
        "cache_read_tokens, cache_creation_tokens FROM lynkr_sessions WHERE id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        return None
    session = _session_summary(row)
    blobs = _blob_reader(db, session_id)
    messages: dict[int, list[dict[str, Any]]] = {}
    for turn, position, role, digest in db.execute(
        "SELECT turn, position, role, digest FROM lynkr_session_messages "
        "WHERE session_id = ? ORDER BY turn, position",
        (session_id,),
    ).fetchall():
        content = blobs(digest)["content"]
        messages.setdefault(turn, []).append(_message_view(position, role, content, full))
    session["turns"] = [
        _turn_view(turn_row, messages.get(turn_row[0], []), blobs, full)
        for turn_row in db.execute(
            "SELECT turn, branch, started, ended, model, first, added, answer, stop_reason, "
            "input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens "
            "FROM lynkr_session_turns WHERE session_id = ? ORDER BY turn",
            (session_id,),
        ).fetchall()
    ]
    session["branches"] = [
        {"branch": b, "parent": p, "fork": f, "length": n}
        for b, p, f, n in db.execute(
            "SELECT branch, parent, fork, length FROM lynkr_session_branches "
            "WHERE session_id = ? ORDER BY branch",
            (session_id,),
        ).fetchall()
    ]
    return session


def _list_sessions(db: Connection, limit: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT id, created, updated, model, turns, branches, input_tokens, output_tokens, "
        "cache_read_tokens, cache_creation_tokens FROM lynkr_sessions "
        "ORDER BY updated DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [_session_summary(row) for row in rows]


def _stats(db: Connection) -> dict[str, int]:
    counts = {
        table.removeprefix("lynkr_session_"): int(
            db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        )
        for table in _TABLES
    }
    counts["sessions"] = int(db.execute("SELECT COUNT(*) FROM lynkr_sessions").fetchone()[0])
    (size,) = db.execute(
        "SELECT COALESCE(SUM(LENGTH(content)), 0) FROM lynkr_session_blobs"
    ).fetchone()
    counts["content_bytes"] = int(size)
    return counts


def _blob_reader(db: Connection, session_id: str) -> Callable[[str], dict[str, Any]]:
    def read(digest: str) -> dict[str, Any]:
        row = db.execute(
            "SELECT content FROM lynkr_session_blobs WHERE session_id = ? AND digest = ?",
            (session_id, digest),
        ).fetchone()
        loaded = orjson.loads(row[0]) if row else {"content": []}
        return loaded if isinstance(loaded, dict) else {"content": loaded}

    return read


def _session_summary(row: Sequence[Any]) -> dict[str, Any]:
    session_id, created, updated, model, turns, branches, *usage = row
    return {
        "id": session_id,
        "created_at": _iso(created),
        "updated_at": _iso(updated),
        "model": model,
        "turn_count": turns,
        "branch_count": branches,
        "usage": dict(zip(USAGE_FIELDS, usage, strict=True)),
    }


def _turn_view(
    row: Sequence[Any],
    messages: list[dict[str, Any]],
    blobs: Callable[[str], dict[str, Any]],
    full: bool,
) -> dict[str, Any]:
    turn, branch, started, ended, model, first, added, answer, stop, *usage = row
    view: dict[str, Any] = {
        "turn": turn,
        "branch": branch,
        "started_at": _iso(started),
        "ended_at": _iso(ended) if ended is not None else None,
        "model": model,
        "first_position": first,
        "new_message_count": added,
        "new_messages": messages,
        "answer": None,
        "usage": None,
    }
    if answer is not None:
        content = blobs(answer)["content"]
        view["answer"] = {**_message_view(None, "assistant", content, full), "stop_reason": stop}
        view["usage"] = dict(zip(USAGE_FIELDS, usage, strict=True))
    return view


def _message_view(position: int | None, role: str, content: Any, full: bool) -> dict[str, Any]:
    blocks = content if isinstance(content, list) else []
    view: dict[str, Any] = {"role": role}
    if position is not None:
        view["position"] = position
    view["blocks"] = [b.get("type") if isinstance(b, dict) else "?" for b in blocks]
    view["summary"] = " | ".join(_block_summary(b) for b in blocks)
    if full:
        view["content"] = blocks
    return view


def _block_summary(block: Any) -> str:
    if not isinstance(block, dict):
        return "?"
    kind = block.get("type")
    if kind == "text":
        return _clip(str(block.get("text", "")))
    if kind == "tool_use":
        arguments = orjson.dumps(block.get("input", {})).decode()
        return _clip(f"tool_use {block.get('name')} {arguments}")
    if kind == "tool_result":
        inner = block.get("content")
        text = inner if isinstance(inner, str) else " ".join(_block_summary(b) for b in inner or [])
        marker = " (error)" if block.get("is_error") else ""
        return _clip(f"tool_result {block.get('tool_use_id')}{marker}: {text}")
    if kind in {"thinking", "redacted_thinking"}:
        return f"{kind} ({len(str(block.get('thinking', block.get('data', ''))))} chars)"
    return str(kind)


def _clip(text: str) -> str:
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- endpoint


class SessionsEndpoint:
    """`GET /v1/lynkr/sessions[?limit=N]` and `GET /v1/lynkr/sessions/{id}[?content=full]`.

    Loopback clients only (until inbound auth exists): others get a 403
    `permission_error`; an unknown id is a 404 `not_found_error`. Mount it for
    any path under `/v1/lynkr/sessions` (a client path prefix is allowed).
    """

    PREFIX = "/v1/lynkr/sessions"

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, send)
        except (NotFound, PermissionDenied) as error:
            await send_error(send, error)

    async def _serve(self, scope: Scope, send: Send) -> None:
        client = scope.get("client")
        if not client or client[0] not in _LOOPBACK:
            raise PermissionDenied(
                "The sessions API answers only clients on loopback (127.0.0.1 or ::1) until "
                "inbound authentication is configured."
            )
        if scope.get("method") not in {"GET", "HEAD"}:
            raise NotFound(f"No endpoint {scope.get('method')} {self.PREFIX}; use GET.")
        rest = unquote(api_path(scope["path"]).removeprefix(self.PREFIX).strip("/"))
        query = _query(scope)
        head_only = scope["method"] == "HEAD"
        if not rest:
            given = query.get("limit", "")
            limit = int(given) if given.isascii() and given.isdigit() else 50
            sessions = await self.store.list(min(limit, 1000))
            payload = orjson.dumps({"object": "list", "data": sessions})
            await send_json(send, 200, payload, head_only=head_only)
            return
        found = await self.store.get(rest, full=query.get("content") == "full")
        if found is None:
            raise NotFound(f"No session '{rest}'. GET {self.PREFIX} lists the known ones.")
        await send_json(send, 200, orjson.dumps(found), head_only=head_only)


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    pairs = (part.partition("=") for part in raw.split("&") if part)
    return {unquote(key): unquote(value) for key, _, value in pairs}
