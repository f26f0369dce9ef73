"""Reading a session back: the rows, and the JSON views the sessions endpoint shows.

A view summarises each message (its block types and a clipped one-line text)
unless the whole content is asked for; usage is shown per turn and as the
session's totals. These run on the store's worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from lynkr.sessions.encoding import USAGE_FIELDS
from lynkr.sessions.identity import OWNER_SEPARATOR, split_owned
from lynkr.sessions.tables import TABLES
from lynkr.stores import Connection

__all__ = ["list_sessions", "read_session", "table_stats"]

_SUMMARY_CHARS = 200


def read_session(db: Connection, session_id: str, full: bool) -> dict[str, Any] | None:
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


def list_sessions(db: Connection, limit: int, owner: str | None) -> list[dict[str, Any]]:
    columns = (
        "SELECT id, created, updated, model, turns, branches, input_tokens, output_tokens, "
        "cache_read_tokens, cache_creation_tokens FROM lynkr_sessions "
    )
    args: tuple[str, ...]
    if owner is None:  # sessions of requests without a caller: ids without a separator
        where, args = "WHERE instr(id, ?) = 0 ", (OWNER_SEPARATOR,)
    else:  # the primary key's range `owner/` … `owner0` ('0' follows '/')
        after = chr(ord(OWNER_SEPARATOR) + 1)
        where, args = "WHERE id >= ? AND id < ? ", (owner + OWNER_SEPARATOR, owner + after)
    rows = db.execute(columns + where + "ORDER BY updated DESC LIMIT ?", (*args, limit)).fetchall()
    return [_session_summary(row) for row in rows]


def table_stats(db: Connection) -> dict[str, int]:
    counts = {
        table.removeprefix("lynkr_session_"): int(
            db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        )
        for table in TABLES
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
        "id": split_owned(session_id)[1],  # the id its client knows, without the caller
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
