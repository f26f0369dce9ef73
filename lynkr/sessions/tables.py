"""The session store's tables, and the statements that write them (SQLite).

A session holds *branches*: a branch is a conversation the client has sent,
kept as its `length` and the rolling hash of its messages (`head`, see
`encoding.prepare`). A request continues the branch whose head equals the
rolling hash of its own first `length` messages (the longest such branch;
only the request's own rolling hashes are looked up, so a session with
thousands of branches costs no more than one with a few) and appends the
rest. When no branch fits — the client edited, rewound or compacted the
history, or a side request (a title, say) shares the session id — a new
branch starts from the longest stored prefix it shares (found by binary
search over the stored rolling hashes) and stores only the rest. Nothing is
duplicated or overwritten, so storage grows linearly with the turns.

Every function here runs on the store's writer thread, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lynkr.sessions.encoding import USAGE_FIELDS, Prepared
from lynkr.stores import Connection

__all__ = [
    "ADD_USAGE",
    "ANSWER_TURN",
    "SCHEMA",
    "TABLES",
    "TURN_USAGE",
    "Branch",
    "append_messages",
    "choose_branch",
    "delete_session",
    "put_blob",
    "session_counts",
]

SCHEMA = """
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
TABLES = (
    "lynkr_session_turns",
    "lynkr_session_blobs",
    "lynkr_session_messages",
    "lynkr_session_branches",
)


_USAGE_COLUMNS = tuple(USAGE_FIELDS.values())
TURN_USAGE = (
    f"SELECT {', '.join(_USAGE_COLUMNS)} FROM lynkr_session_turns WHERE session_id = ? AND turn = ?"
)
ANSWER_TURN = (
    "UPDATE lynkr_session_turns SET answer = ?, stop_reason = ?, ended = ?, "
    + ", ".join(f"{c} = ?" for c in _USAGE_COLUMNS)
    + " WHERE session_id = ? AND turn = ?"
)
ADD_USAGE = (
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
class Branch:
    """Where a request's new messages go: on `number`, from position `start`.

    `new` branches are not stored yet: they fork from `parent` at `start`.
    """

    number: int
    start: int
    new: bool = False
    parent: int | None = None


def session_counts(
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


def choose_branch(
    db: Connection, session_id: str, prefixes: Sequence[str], branches: int
) -> Branch:
    """The branch the request continues, or a new one (numbered `branches`) from its fork."""
    found = _continued_branch(db, session_id, prefixes)
    if found is not None:
        return found
    parent, fork = _longest_stored_prefix(db, session_id, prefixes)
    return Branch(branches, fork, new=True, parent=parent)


def _continued_branch(db: Connection, session_id: str, prefixes: Sequence[str]) -> Branch | None:
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
                return Branch(int(branch), int(length))
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


def append_messages(
    db: Connection, session_id: str, branch: Branch, turn: int, prepared: Prepared
) -> None:
    """Store the request's messages from `branch.start` on and move (or create) the branch."""
    total = len(prepared.digests)
    for position in range(branch.start, total):
        digest = prepared.digests[position]
        put_blob(db, session_id, digest, prepared.encoded[position])
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


def put_blob(db: Connection, session_id: str, digest: str, content: bytes) -> None:
    db.execute(
        "INSERT OR IGNORE INTO lynkr_session_blobs (session_id, digest, content) VALUES (?, ?, ?)",
        (session_id, digest, content),
    )


def delete_session(db: Connection, session_id: str) -> None:
    for table in TABLES:
        db.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
    db.execute("DELETE FROM lynkr_sessions WHERE id = ?", (session_id,))
