"""Sessions scoped to their caller: stored ids, lists and reads never cross callers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lynkr.sessions import SQLiteSessionStore, owned_id, split_owned

BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("owner", "session_id", "stored"),
    [("alice", "s1", "alice/s1"), (None, "s1", "s1"), (None, "alice/s1", "alice%2Fs1"),
     ("bob", "a/b", "bob/a/b")],
)  # fmt: skip
def test_owned_ids(owner: str | None, session_id: str, stored: str) -> None:
    assert owned_id(owner, session_id) == stored
    if owner is not None or "/" not in session_id:
        assert split_owned(stored) == (owner, session_id)


@pytest.mark.anyio
async def test_lists_hold_only_the_owner_s_sessions(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        for owner in ("alice", "alice", "bob", None, "alice0"):
            done = store.submit_turn(owned_id(owner, f"s-{owner}"), store.snapshot(BODY), None)
            await asyncio.wrap_future(done)
        alice = await store.list(10, owner="alice")
        assert [s["id"] for s in alice] == ["s-alice"]  # not "alice0"'s, next in key order
        assert [s["id"] for s in await store.list(10, owner="bob")] == ["s-bob"]
        assert [s["id"] for s in await store.list(10)] == ["s-None"]
        assert await store.get(owned_id("bob", "s-alice")) is None
    finally:
        await store.close()
