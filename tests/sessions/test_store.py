"""The session store (lynkr/sessions/) on real SQLite files in temp dirs."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lynkr.sessions import (
    BacklogFull,
    RequestSnapshot,
    SessionsEndpoint,
    TurnRef,
    canonical_message,
    derive_session_id,
    encode_message,
    encode_messages,
)
from lynkr.sessions import SQLiteSessionStore as SessionStore
from lynkr.sessions.encoding import Messages, RecentRequests, messages_of, prepare
from lynkr.stores import connect

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
SYSTEM = [
    {
        "type": "text",
        "text": "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=x;",
    },
    {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(30):
            return await coroutine

    return asyncio.run(bounded())


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def request(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A Claude Code-like body: cache_control on the last block of the last message (A.4)."""
    marked = json.loads(json.dumps(messages))
    if marked and isinstance(marked[-1]["content"], list):
        marked[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    return {"model": "claude-x", "system": SYSTEM, "messages": marked, **extra}


def conversation(turns: int, size: int = 300) -> list[dict[str, Any]]:
    """`turns` user/assistant pairs, each message about `size` characters."""
    messages: list[dict[str, Any]] = []
    for turn in range(turns):
        messages.append(user(f"question {turn} " + "q" * size))
        messages.append(assistant(f"answer {turn} " + "a" * size))
    return messages


def usage(inp: int, out: int, read: int = 0, create: int = 0) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": create,
    }


async def play(store: SessionStore, session: str, turns: int, size: int = 300) -> list[TurnRef]:
    """A growing conversation: each request resends everything, each answer is recorded."""
    full = conversation(turns, size)
    refs = []
    for turn in range(turns):
        ref = await store.record_request(session, request(full[: 2 * turn + 1]))
        await store.record_answer(ref, {**full[2 * turn + 1], "usage": usage(10, 5)})
        refs.append(ref)
    return refs


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "lynkr.sqlite3"


# --------------------------------------------------------------------------- session ids


def test_the_claude_code_header_names_the_session() -> None:
    headers = {"x-claude-code-session-id": "6f1c-uuid"}
    assert derive_session_id(headers, request([user("hi")])) == "6f1c-uuid"
    raw = [(b"X-Claude-Code-Session-Id", b"6f1c-uuid"), (b"x-app", b"cli")]
    assert derive_session_id(raw, None) == "6f1c-uuid"


def test_metadata_user_id_json_string_names_the_session() -> None:
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "meta-uuid"})
    body = request([user("hi")], metadata={"user_id": user_id})
    assert derive_session_id({}, body) == "meta-uuid"
    assert derive_session_id({"x-claude-code-session-id": "hdr"}, body) == "hdr"


@pytest.mark.parametrize("user_id", ["not json", "{broken", '{"session_id": ""}', "[1]", 7])
def test_unusable_metadata_falls_back_to_the_fingerprint(user_id: Any) -> None:
    body = request([user("hi")], metadata={"user_id": user_id})
    assert derive_session_id({}, body).startswith("fp_")


def test_the_fingerprint_is_stable_across_a_growing_conversation() -> None:
    full = conversation(5)
    ids = {derive_session_id({}, request(full[: 2 * n + 1])) for n in range(5)}
    assert len(ids) == 1
    (only,) = ids
    assert only.startswith("fp_") and len(only) == 27


def test_the_fingerprint_ignores_the_billing_header_and_cache_control() -> None:
    body = request([user("hello")])
    other = request([user("hello")])
    other["system"] = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=9.9.9.fff;"}
    ]
    other["system"].append({"type": "text", "text": "You are Claude Code."})
    assert derive_session_id({}, body) == derive_session_id({}, other)
    as_string = {**body, "system": "x-anthropic-billing-header: z;\nYou are Claude Code."}
    as_string["messages"] = [{"role": "user", "content": "hello"}]
    assert derive_session_id({}, as_string) == derive_session_id({}, body)


def test_different_conversations_get_different_fingerprints() -> None:
    first = derive_session_id({}, request([user("fix the bug in a.py")]))
    second = derive_session_id({}, request([user("write the README")]))
    other_agent = derive_session_id({}, {**request([user("fix the bug in a.py")]), "system": "x"})
    assert len({first, second, other_agent}) == 3
    assert derive_session_id({}, None) == derive_session_id({}, {})


# --------------------------------------------------------------------------- incremental turns


def test_only_new_messages_are_stored(db_path: Path) -> None:
    async def scenario() -> tuple[list[TurnRef], dict[str, int], dict[str, Any] | None]:
        store = SessionStore(db_path)
        await store.open()
        refs = await play(store, "s1", 4)
        stats = await store.stats()
        session = await store.get("s1")
        await store.close()
        return refs, stats, session

    refs, stats, session = run(scenario())
    assert [r.turn for r in refs] == [0, 1, 2, 3]
    assert [r.added for r in refs] == [1, 2, 2, 2]  # the first user message, then echo + new
    assert {r.branch for r in refs} == {0}
    assert stats["messages"] == 7  # the 7 messages of the last request, each once
    assert stats["blobs"] == 8  # + the last answer, not yet echoed back
    assert stats["branches"] == 1
    assert session is not None
    assert session["turn_count"] == 4
    assert [t["new_message_count"] for t in session["turns"]] == [1, 2, 2, 2]
    roles = [[m["role"] for m in t["new_messages"]] for t in session["turns"]]
    assert roles == [["user"], ["assistant", "user"], ["assistant", "user"], ["assistant", "user"]]
    last = session["turns"][-1]
    assert last["answer"]["summary"].startswith("answer 3 ")
    assert last["answer"]["blocks"] == ["text"]
    assert "content" not in last["answer"]


def test_the_echoed_answer_is_the_same_row_as_the_recorded_one(db_path: Path) -> None:
    async def scenario() -> dict[str, int]:
        store = SessionStore(db_path)
        ref = await store.record_request("s", request([user("hi")]))
        await store.record_answer(ref, assistant("hello!"), usage(1, 1))
        await store.record_request("s", request([user("hi"), assistant("hello!"), user("more")]))
        stats = await store.stats()
        await store.close()
        return stats

    stats = run(scenario())
    assert stats["blobs"] == 3  # hi, hello!, more
    assert stats["messages"] == 3


def test_a_retried_request_is_a_turn_with_nothing_new(db_path: Path) -> None:
    async def scenario() -> tuple[TurnRef, TurnRef, dict[str, int]]:
        store = SessionStore(db_path)
        first = await store.record_request("s", request([user("hi")]))
        again = await store.record_request("s", request([user("hi")]))
        stats = await store.stats()
        await store.close()
        return first, again, stats

    first, again, stats = run(scenario())
    assert (again.turn, again.branch, again.added) == (1, first.branch, 0)
    assert stats["messages"] == 1 and stats["branches"] == 1


def test_an_edited_history_starts_a_branch_from_the_shared_prefix(db_path: Path) -> None:
    full = conversation(3)

    async def scenario() -> tuple[TurnRef, TurnRef, dict[str, Any] | None, dict[str, int]]:
        store = SessionStore(db_path)
        await play(store, "s", 3)
        edited = [*full[:3], user("an edited question"), assistant("x"), user("go on")]
        fork = await store.record_request("s", request(edited))
        # The original line goes on: it continues branch 0, no new branch.
        back = await store.record_request("s", request([*full, user("next")]))
        session = await store.get("s")
        stats = await store.stats()
        await store.close()
        return fork, back, session, stats

    fork, back, session, stats = run(scenario())
    assert (fork.branch, fork.added) == (1, 3)
    assert (back.branch, back.added) == (0, 2)
    assert session is not None
    assert session["branches"][1] == {"branch": 1, "parent": 0, "fork": 3, "length": 6}
    assert session["branches"][0]["length"] == 7
    assert stats["messages"] == 5 + 3 + 2


def test_a_compacted_history_starts_a_root_branch(db_path: Path) -> None:
    async def scenario() -> tuple[TurnRef, dict[str, Any] | None]:
        store = SessionStore(db_path)
        await play(store, "s", 3)
        ref = await store.record_request("s", request([user("Summary of the conversation…")]))
        session = await store.get("s")
        await store.close()
        return ref, session

    ref, session = run(scenario())
    assert (ref.branch, ref.added) == (1, 1)
    assert session is not None
    assert session["branches"][1] == {"branch": 1, "parent": None, "fork": 0, "length": 1}


def test_side_requests_in_the_same_session_do_not_multiply_branches(db_path: Path) -> None:
    """Claude Code's title request shares the session id but not the conversation."""
    full = conversation(4)

    async def scenario() -> tuple[list[int], dict[str, int]]:
        store = SessionStore(db_path)
        branches = []
        for turn in range(4):
            ref = await store.record_request("s", request(full[: 2 * turn + 1]))
            await store.record_answer(ref, full[2 * turn + 1])
            title = await store.record_request("s", request([user("Write a title for: q")]))
            branches += [ref.branch, title.branch]
        stats = await store.stats()
        await store.close()
        return branches, stats

    branches, stats = run(scenario())
    assert branches == [0, 1] * 4
    assert stats["branches"] == 2
    assert stats["messages"] == 7 + 1


def test_moving_cache_control_does_not_break_the_line(db_path: Path) -> None:
    async def scenario() -> list[TurnRef]:
        store = SessionStore(db_path)
        refs = await play(store, "s", 5)
        await store.close()
        return refs

    assert {ref.branch for ref in run(scenario())} == {0}


# --------------------------------------------------------------------------- usage


def test_usage_per_turn_and_session_totals(db_path: Path) -> None:
    async def scenario() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        first = await store.record_request("s", request([user("a")]))
        await store.record_answer(first, assistant("b"), usage(100, 20, 0, 90))
        second = await store.record_request("s", request([user("a"), assistant("b"), user("c")]))
        message = {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"c": "ls"}}],
            "stop_reason": "tool_use",
            "usage": usage(130, 30, 90, 40),
        }
        await store.record_answer(second, message)
        session = await store.get("s", full=True)
        await store.close()
        return session

    session = run(scenario())
    assert session is not None
    assert session["usage"] == usage(230, 50, 90, 130)
    assert [t["usage"] for t in session["turns"]] == [usage(100, 20, 0, 90), usage(130, 30, 90, 40)]
    answer = session["turns"][1]["answer"]
    assert answer["stop_reason"] == "tool_use"
    assert answer["summary"] == 'tool_use Bash {"c":"ls"}'
    assert answer["content"][0]["id"] == "t1"


def test_recording_an_answer_twice_corrects_the_totals(db_path: Path) -> None:
    async def scenario() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        ref = await store.record_request("s", request([user("a")]))
        await store.record_answer(ref, "partial", usage(10, 1))
        await store.record_answer(ref, [{"type": "text", "text": "whole"}], usage(10, 7))
        session = await store.get("s")
        await store.close()
        return session

    session = run(scenario())
    assert session is not None
    assert session["usage"] == usage(10, 7)
    assert session["turns"][0]["answer"]["summary"] == "whole"


def test_fire_and_forget_is_ordered_and_flushed_on_close(db_path: Path) -> None:
    async def scenario() -> None:
        store = SessionStore(db_path)
        body = request([user("hi")])
        turn = store.submit_request("s", body)
        body["messages"].append(user("mutated after submit"))  # snapshotted: no effect
        store.submit_answer(turn, assistant("hello"), usage(3, 4))
        await store.close()

    run(scenario())

    async def check() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        session = await store.get("s")
        await store.close()
        return session

    session = run(check())
    assert session is not None
    assert session["usage"] == usage(3, 4)
    assert session["turns"][0]["new_message_count"] == 1


def test_raw_request_bytes_are_accepted(db_path: Path) -> None:
    async def scenario() -> TurnRef:
        store = SessionStore(db_path)
        ref = await store.record_request("s", orjson.dumps(request([user("hi")])))
        await store.close()
        return ref

    assert run(scenario()).added == 1


def test_an_unknown_session_is_none(db_path: Path) -> None:
    async def scenario() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        found = await store.get("nope")
        await store.close()
        return found

    assert run(scenario()) is None


# --------------------------------------------------------------------------- retention


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_expired_sessions_are_pruned_on_write_in_bounded_batches(db_path: Path) -> None:
    clock = Clock()

    async def scenario() -> list[list[str]]:
        store = SessionStore(db_path, retention_days=1, prune_batch=3, clock=clock)
        for n in range(7):
            await store.record_request(f"old{n}", request([user(f"q{n}")]))
        clock.now += 2 * 86400
        seen = []
        for n in range(3):
            await store.record_request(f"new{n}", request([user("fresh")]))
            seen.append(sorted(s["id"] for s in await store.list(100)))
        stats = await store.stats()
        await store.close()
        assert stats["messages"] == stats["blobs"] == stats["turns"] == 3
        return seen

    seen = run(scenario())
    assert len(seen[0]) == 4 + 1  # 3 of 7 pruned, plus new0
    assert seen[2] == ["new0", "new1", "new2"]


def test_max_sessions_evicts_the_least_recently_updated(db_path: Path) -> None:
    clock = Clock()

    async def scenario() -> list[str]:
        store = SessionStore(db_path, max_sessions=3, clock=clock)
        for name in ["a", "b", "c"]:
            clock.now += 1
            await store.record_request(name, request([user(name)]))
        clock.now += 1
        await store.record_request("a", request([user("a"), assistant("x"), user("y")]))
        clock.now += 1
        await store.record_request("d", request([user("d")]))
        names = [s["id"] for s in await store.list(10)]
        await store.close()
        return names

    assert run(scenario()) == ["d", "a", "c"]


def test_bad_options_are_refused_with_the_key_named(db_path: Path) -> None:
    with pytest.raises(ValueError, match=r"sessions.retention_days must be > 0, got 0"):
        SessionStore(db_path, retention_days=0)
    with pytest.raises(ValueError, match=r"sessions.max_sessions must be >= 1"):
        SessionStore(db_path, max_sessions=0)
    with pytest.raises(ValueError, match=r"sessions.prune_batch must be >= 1"):
        SessionStore(db_path, prune_batch=0)
    with pytest.raises(ValueError, match=r"sessions.prune_interval must be >= 0, got -1"):
        SessionStore(db_path, prune_interval=-1)


# --------------------------------------------------------------------------- growth


def test_storage_grows_linearly_with_turns(db_path: Path) -> None:
    """200 turns of a conversation resent whole each time: rows and bytes ∝ turns, not turns²."""

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        store = SessionStore(db_path)
        await play(store, "half", 100)
        half = await store.stats()
        await play(store, "whole", 200)
        both = await store.stats()
        await store.close()
        whole = {key: both[key] - half[key] for key in both}
        return half, whole

    half, whole = run(scenario())
    assert whole["messages"] == 2 * 200 - 1 and half["messages"] == 2 * 100 - 1
    assert whole["blobs"] == 2 * 200
    assert whole["turns"] == 200
    # Twice the turns, about twice the bytes (quadratic would be four times).
    assert 1.9 < whole["content_bytes"] / half["content_bytes"] < 2.1
    everything_resent = sum(len(orjson.dumps(conversation(n, 300))) for n in range(1, 201))
    assert whole["content_bytes"] < everything_resent / 50
    file_bytes = sum(p.stat().st_size for p in db_path.parent.iterdir())
    assert file_bytes < 4 * (whole["content_bytes"] + half["content_bytes"]) + 200_000


# --------------------------------------------------------------------------- crash, concurrency

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from lynkr.sessions import SQLiteSessionStore as SessionStore

    async def main(path):
        store = SessionStore(path)
        messages = []
        for n in range(100000):
            messages.append({"role": "user", "content": f"question {n}"})
            ref = await store.record_request("crash", {"model": "m", "messages": messages})
            answer = {"role": "assistant", "content": f"answer {n}"}
            await store.record_answer(ref, answer, {"input_tokens": 1, "output_tokens": 1})
            messages.append(answer)
            print(n, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_writer_killed_with_sigkill_loses_no_committed_turn(
    db_path: Path, tmp_path: Path
) -> None:
    done = -1
    errors = tmp_path / "writer.err"
    with (
        errors.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        while done < 30 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            done = int(line)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert done >= 30, errors.read_text()
    assert process.returncode == -signal.SIGKILL

    db = connect(db_path)
    turns, answered, total_out = db.execute(
        "SELECT COUNT(*), COUNT(answer), SUM(output_tokens) FROM lynkr_session_turns"
    ).fetchone()
    (session_out,) = db.execute("SELECT output_tokens FROM lynkr_sessions").fetchone()
    (length,) = db.execute("SELECT length FROM lynkr_session_branches").fetchone()
    (rows,) = db.execute("SELECT COUNT(*) FROM lynkr_session_messages").fetchone()
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert answered >= done + 1  # every turn the writer reported is there, answer included
    assert turns in {answered, answered + 1}  # at most the one in flight lacks its answer
    assert session_out == total_out == answered
    assert rows == length == 2 * turns - 1


def test_two_sessions_interleaved_stay_apart(db_path: Path) -> None:
    async def scenario() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        store = SessionStore(db_path)
        await asyncio.gather(play(store, "left", 20), play(store, "right", 20))
        left, right = await store.get("left"), await store.get("right")
        await store.close()
        return left, right

    left, right = run(scenario())
    for session in (left, right):
        assert session is not None
        assert session["turn_count"] == 20 and session["branch_count"] == 1
        assert session["usage"]["input_tokens"] == 200
        assert [t["turn"] for t in session["turns"]] == list(range(20))


def test_two_stores_on_one_file_interleave_safely(db_path: Path) -> None:
    """Two processes' worth of connections (WAL, busy timeout) writing at once."""

    async def scenario() -> list[dict[str, Any]]:
        one, two = SessionStore(db_path), SessionStore(db_path)
        await asyncio.gather(play(one, "one", 15), play(two, "two", 15), play(one, "three", 15))
        listed = await two.list(10)
        await one.close()
        await two.close()
        return listed

    listed = run(scenario())
    assert sorted((s["id"], s["turn_count"]) for s in listed) == [
        ("one", 15),
        ("three", 15),
        ("two", 15),
    ]


# --------------------------------------------------------------------------- endpoint


async def call(endpoint: SessionsEndpoint, path: str, client: str = "127.0.0.1") -> Any:
    sent: list[dict[str, Any]] = []
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        # As an ASGI server gives it: the path percent-decoded, the raw bytes beside it.
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [],
        "client": (client, 5555),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    await endpoint(scope, receive, send)
    return sent[0]["status"], orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_the_endpoint_lists_and_shows_sessions(db_path: Path) -> None:
    async def scenario() -> list[Any]:
        store = SessionStore(db_path)
        await play(store, "sess-1", 2)
        endpoint = SessionsEndpoint(store)
        answers = [
            await call(endpoint, "/v1/lynkr/sessions"),
            await call(endpoint, "/v1/lynkr/sessions/sess-1"),
            await call(endpoint, "/proxy/v1/lynkr/sessions/sess-1?content=full", "::1"),
            await call(endpoint, "/v1/lynkr/sessions?limit=0"),
            await call(endpoint, "/v1/lynkr/sessions/sess%2D1"),
        ]
        await store.close()
        return answers

    listed, shown, full, empty, quoted = run(scenario())
    assert quoted == shown
    assert listed[0] == 200 and [s["id"] for s in listed[1]["data"]] == ["sess-1"]
    assert shown[0] == 200
    assert shown[1]["usage"] == usage(20, 10)
    assert len(shown[1]["turns"]) == 2 and "content" not in shown[1]["turns"][0]["new_messages"][0]
    assert full[1]["turns"][0]["new_messages"][0]["content"][0]["type"] == "text"
    assert empty[1]["data"] == []


def test_the_endpoint_refuses_non_loopback_clients_and_unknown_ids(db_path: Path) -> None:
    async def scenario() -> list[Any]:
        store = SessionStore(db_path)
        endpoint = SessionsEndpoint(store)
        answers = [
            await call(endpoint, "/v1/lynkr/sessions", client="10.0.0.7"),
            await call(endpoint, "/v1/lynkr/sessions/missing"),
        ]
        await store.close()
        return answers

    refused, missing = run(scenario())
    assert refused[0] == 403 and refused[1]["error"]["type"] == "permission_error"
    assert refused[1]["type"] == "error"
    assert missing[0] == 404 and missing[1]["error"]["type"] == "not_found_error"


def test_a_full_backlog_skips_turns_instead_of_growing(db_path: Path) -> None:
    """Recording is best effort: memory stays bounded when writes cannot keep up."""

    async def scenario() -> tuple[int, int, int]:
        store = SessionStore(db_path, max_backlog=3)
        await store.open()
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        turns = [store.submit_request(f"s{i}", body) for i in range(10)]
        for turn in turns:
            store.submit_answer(turn, {"content": [{"type": "text", "text": "ok"}]})
        await store.close()
        reopened = SessionStore(db_path)
        await reopened.open()
        listed = await reopened.list(20)
        await reopened.close()
        return store.skipped, len(listed), store.backlog

    skipped, stored, backlog = run(scenario())
    assert skipped >= 7 - 3  # at most the backlog (plus what finished meanwhile) was queued
    assert stored == 10 - skipped
    assert backlog == 0


# --------------------------------------------------------------------------- branch choice


def model_record(branches: list[list[str]], texts: list[str]) -> tuple[int, int]:
    """The module docstring's rule on plain lists: (branch, messages added).

    Continue the longest branch (the newest among equals) that is a prefix of the
    request; else start one from the longest prefix any branch shares with it.
    """
    for number in sorted(range(len(branches)), key=lambda b: (len(branches[b]), b), reverse=True):
        stored = branches[number]
        if stored == texts[: len(stored)]:
            branches[number] = list(texts)
            return number, len(texts) - len(stored)
    fork = max((shared(stored, texts) for stored in branches), default=0)
    branches.append(list(texts))
    return len(branches) - 1, len(texts) - fork


def shared(one: list[str], other: list[str]) -> int:
    count = 0
    for a, b in zip(one, other, strict=False):
        if a != b:
            break
        count += 1
    return count


def scenario_requests(seed: int) -> list[list[str]]:
    """Requests that grow, retry, rewind, edit and fork, over a small alphabet."""
    rng = random.Random(seed)
    sent: list[list[str]] = [[]]
    for _ in range(60):
        base = list(rng.choice(sent))
        move = rng.random()
        if move < 0.5:
            texts = base + [rng.choice("abc") for _ in range(rng.randint(1, 3))]
        elif move < 0.7:
            texts = base[: rng.randint(0, len(base))]
        elif move < 0.9 and base:
            texts = [*base[:-1], "edited"]
        else:
            texts = [rng.choice("abc") for _ in range(rng.randint(0, 4))]
        sent.append(texts)
    return sent[1:]


def many_branches_requests() -> list[list[str]]:
    """The benchmark's pattern (one shared history, a fresh last message each), then the line."""
    history = [f"h{n}" for n in range(15)]
    forks = [[*history, f"nonce {n}"] for n in range(300)]
    return [*forks, [*history, "nonce 0", "answer", "next"], [*history, "nonce 7", "answer"]]


def long_requests() -> list[list[str]]:
    """Conversations longer than one lookup of branch heads (32, then 512 at a time)."""
    long = [f"m{n}" for n in range(1200)]
    return [
        long[:5],
        long[:700],  # continues the 5-message branch: its head is 695 hashes back
        [*long[:300], "fork"],
        long[:1200],
        [*long[:5], "other"],
        [],
        ["x"],
    ]


@pytest.mark.parametrize(
    "requests",
    [*(scenario_requests(seed) for seed in (1, 2, 3)), many_branches_requests(), long_requests()],
)
def test_the_branch_chosen_is_the_one_the_rule_names(
    db_path: Path, requests: list[list[str]]
) -> None:
    async def scenario() -> list[tuple[int, int]]:
        store = SessionStore(db_path)
        refs = [
            await store.record_request("s", request([user(t) for t in texts])) for texts in requests
        ]
        await store.close()
        return [(ref.branch, ref.added) for ref in refs]

    branches: list[list[str]] = []
    assert run(scenario()) == [model_record(branches, texts) for texts in requests]


# --------------------------------------------------------------------------- canonical bytes

MARKER = {"type": "ephemeral"}


def test_cache_control_is_ignored_wherever_it_sits(db_path: Path) -> None:
    """First, middle or last key, in nested tool results and tool inputs: one blob either way."""

    def blocks(marker: dict[str, Any] | None) -> list[dict[str, Any]]:
        mark = {"cache_control": marker} if marker else {}
        nested = {**mark, "type": "text", "text": 'a "quoted" {brace}, cache_control'}
        return [
            {**mark, "type": "text", "text": "first"},
            {"type": "text", **mark, "text": "middle"},
            {"type": "tool_result", "tool_use_id": "t1", "content": [nested], **mark},
            {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"a": 1, **mark}},
        ]

    marked = {"role": "user", "content": blocks(MARKER)}
    plain = {"role": "user", "content": blocks(None)}
    assert encode_message(marked) == encode_message(plain)
    odd = {"role": "user", "content": blocks({"type": "ephemeral", "ttl": "1h", "x": "}{,"})}
    assert encode_message(odd) == encode_message(plain)

    async def scenario() -> tuple[TurnRef, dict[str, int]]:
        store = SessionStore(db_path)
        await store.record_request("s", {"messages": [marked]})
        ref = await store.record_request("s", {"messages": [plain, assistant("ok")]})
        stats = await store.stats()
        await store.close()
        return ref, stats

    ref, stats = run(scenario())
    assert (ref.branch, ref.added) == (0, 1)
    assert stats["blobs"] == 2


def test_a_string_content_is_one_text_block_for_requests_and_answers(db_path: Path) -> None:
    async def scenario() -> tuple[TurnRef, dict[str, int]]:
        store = SessionStore(db_path)
        first = await store.record_request("s", {"messages": [{"role": "user", "content": "hi"}]})
        await store.record_answer(first, "hello", usage(1, 1))  # a bare string answer
        ref = await store.record_request("s", request([user("hi"), assistant("hello")]))
        stats = await store.stats()
        await store.close()
        return ref, stats

    ref, stats = run(scenario())
    assert (ref.branch, ref.added) == (0, 1)
    assert stats["blobs"] == 2


KEYS = st.sampled_from(["cache_control", "type", "text", "content", "role", "a", 'q"', "{,"])
TRICKY = st.text(alphabet=st.sampled_from(list('"\\{}[],:ac_ontrl é\n')), max_size=10)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY
    | st.sampled_from(["cache_control", '"cache_control":', '{"cache_control":1}'])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=10,
)
MESSAGES = (
    st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["user", "assistant", "system"]) | SCALARS,
            "content": st.lists(VALUES, max_size=4) | VALUES,
            "cache_control": VALUES,
        },
    )
    | VALUES
)


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(MESSAGES, max_size=5))
def test_the_fast_encoding_is_the_canonical_one(messages: list[Any]) -> None:
    """Cutting `cache_control` from orjson's bytes gives `canonical_message`'s bytes exactly."""
    slow = [orjson.dumps(canonical_message(m), option=orjson.OPT_SORT_KEYS) for m in messages]
    assert encode_messages(messages) == slow
    assert [encode_message(m) for m in messages] == slow


def test_reused_hashes_equal_fresh_ones_and_memory_stays_bounded() -> None:
    recent = RecentRequests(budget=4000)
    full = conversation(12, size=100)
    bodies = [
        *(("s", request(full[: 2 * n + 1])) for n in range(12)),
        ("s", request([user("Write a title")])),
        ("s", request([*full[:5], user("edited")])),
        *((f"other{n}", request(full[: n + 1])) for n in range(12)),
    ]
    for session, body in bodies:
        messages = messages_of(body)
        assert recent.prepare(session, messages) == prepare(messages)
        assert recent.size <= recent.budget


# --------------------------------------------------------------------------- batching, pruning


def test_an_answer_queued_with_its_request_finds_its_turn(db_path: Path) -> None:
    """Both jobs run in one transaction, before the request's future resolves."""
    gate = threading.Event()

    async def scenario() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        await store.open()
        store.db.submit(lambda _: gate.wait(5))  # hold the worker: the jobs queue up
        turn = store.submit_request("s", request([user("hi")]))
        answered = store.submit_answer(turn, assistant("hello"), usage(3, 4))
        gate.set()
        await asyncio.wrap_future(answered)
        session = await store.get("s")
        await store.close()
        return session

    session = run(scenario())
    assert session is not None
    assert session["usage"] == usage(3, 4)
    assert session["turns"][0]["answer"]["summary"] == "hello"


def test_expired_sessions_are_looked_for_at_most_every_prune_interval(db_path: Path) -> None:
    """Writing to a known session looks for expired ones only when `prune_interval` has passed."""
    clock = Clock()
    day = 86400

    async def scenario() -> list[list[str]]:
        store = SessionStore(db_path, retention_days=1, prune_interval=600, clock=clock)
        await store.record_request("old", request([user("q")]))
        clock.now += day - 60
        await store.record_request("live", request([user("hi")]))  # a new session: looks
        seen = []
        for step in (120, 540):  # 1 day + 60 s: not yet looked again; + 600 s: looks
            clock.now += step
            await store.record_request("live", request([user("hi"), assistant("x"), user("y")]))
            seen.append(sorted(s["id"] for s in await store.list()))
        await store.close()
        return seen

    assert run(scenario()) == [["live", "old"], ["live"]]


def test_only_the_session_header_is_read_from_a_header_list() -> None:
    raw = [
        (b"x-claude-code-session-xx", b"not this"),
        (b"X-CLAUDE-CODE-SESSION-ID", b"this one"),
        (b"content-type", b"application/json"),
    ]
    assert derive_session_id(raw, None) == "this one"
    body = request([user("hi")])
    assert derive_session_id([(b"x-app", b"cli")], body) == derive_session_id({}, body)


# --------------------------------------------------------------------------- whole turns


def test_a_whole_turn_is_one_job_with_its_request_and_answer(db_path: Path) -> None:
    """submit_turn: the request snapshotted at once, the answer assembled on the writer."""

    async def main() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        await store.open()
        body = request([user("hi")])
        snapshot = store.snapshot(body)
        body["messages"].append(user("changed after the snapshot"))  # must not be stored
        answered = store.submit_turn(
            "s", snapshot, lambda: {**assistant("hello!"), "usage": usage(3, 2)}
        )
        await asyncio.wrap_future(answered)
        found = await store.get("s", full=True)
        await store.close()
        return found

    found = run(main())
    assert found is not None
    (turn,) = found["turns"]
    assert [m["summary"] for m in turn["new_messages"]] == ["hi"]
    assert turn["answer"]["summary"] == "hello!"
    assert found["usage"]["input_tokens"] == 3 and found["usage"]["output_tokens"] == 2


def test_a_turn_without_an_answer_or_with_a_broken_one_keeps_its_request(db_path: Path) -> None:
    def broken() -> Any:
        raise RuntimeError("assembling failed")

    async def main() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        await store.open()
        first = store.submit_turn("s", store.snapshot(request([user("a")])))
        second = store.submit_turn("s", store.snapshot(request([user("b")])), broken)
        third = store.submit_turn("s", store.snapshot(request([user("c")])), lambda: None)
        for job in (first, second, third):
            await asyncio.wrap_future(job)
        found = await store.get("s")
        await store.close()
        return found

    found = run(main())
    assert found is not None
    assert [t["answer"] for t in found["turns"]] == [None, None, None]
    assert [t["new_messages"][0]["summary"] for t in found["turns"]] == ["a", "b", "c"]


def test_a_full_backlog_skips_a_whole_turn(db_path: Path) -> None:
    async def main() -> tuple[BaseException | None, int]:
        store = SessionStore(db_path, max_backlog=1)
        store.backlog = 1  # as if one write were waiting
        job = store.submit_turn("s", store.snapshot(request([user("a")])))
        store.backlog = 0
        await store.close()
        return job.exception(), store.skipped

    error, skipped = run(main())
    assert isinstance(error, BacklogFull) and skipped == 1


def test_a_turn_starts_when_its_request_arrived_and_ends_when_it_was_answered(
    db_path: Path,
) -> None:
    now = [1_700_000_000.0]

    async def main() -> dict[str, Any] | None:
        store = SessionStore(db_path, clock=lambda: now[0])
        await store.open()
        snapshot = store.snapshot(request([user("hi")]))
        now[0] += 5  # the answer took five seconds
        await asyncio.wrap_future(store.submit_turn("s", snapshot, lambda: assistant("hello")))
        found = await store.get("s")
        await store.close()
        return found

    found = run(main())
    assert found is not None
    (turn,) = found["turns"]
    assert turn["started_at"] == "2023-11-14T22:13:20Z"
    assert turn["ended_at"] == "2023-11-14T22:13:25Z"


def test_the_recent_requests_memory_is_bounded_for_a_flood_of_tiny_sessions() -> None:
    """Every one-message conversation is its own session (no id): entries are capped in
    number and counted with their objects, not only their bytes."""
    recent = RecentRequests(8 * 2**20)
    for n in range(5000):
        body = {"model": "m", "messages": [{"role": "user", "content": f"hello {n}"}]}
        recent.prepare(f"fp_{n}", messages_of(body))
    assert len(recent._last) <= 1024
    assert recent.size <= recent.budget


def test_a_failed_turn_does_not_leave_the_session_tally_counting_it(db_path: Path) -> None:
    """A new session's turn rolled back after the tally counted it must not make the store
    evict live sessions (max_sessions=5, 3 stored, 5 failed, 1 more: all 4 stay)."""
    broken = RequestSnapshot(Messages(roles=[], encoded=[b'{"content":[]}'], model="m"), 0.0)

    async def main() -> list[str]:
        store = SessionStore(db_path, max_sessions=5)
        await store.open()
        for n in range(3):
            await asyncio.wrap_future(
                store.submit_turn(f"ok{n}", store.snapshot(request([user("a")])))
            )
        for n in range(5):
            failed = store.submit_turn(f"bad{n}", broken)  # fails after the session row
            with pytest.raises(IndexError):
                await asyncio.wrap_future(failed)
        last = store.submit_turn("ok3", store.snapshot(request([user("b")])))
        await asyncio.wrap_future(last)
        found = sorted(s["id"] for s in await store.list())
        await store.close()
        return found

    assert run(main()) == ["ok0", "ok1", "ok2", "ok3"]


def test_an_answer_that_cannot_be_stored_keeps_its_request(db_path: Path) -> None:
    def unstorable() -> Any:
        return {"content": [{"type": "text", "text": {1, 2}}], "usage": usage(1, 1)}

    async def main() -> dict[str, Any] | None:
        store = SessionStore(db_path)
        await store.open()
        await asyncio.wrap_future(
            store.submit_turn("s", store.snapshot(request([user("a")])), unstorable)
        )
        huge = {**assistant("ok"), "usage": {"output_tokens": 2**70}}
        await asyncio.wrap_future(
            store.submit_turn("s", store.snapshot(request([user("b")])), lambda: huge)
        )
        found = await store.get("s")
        await store.close()
        return found

    found = run(main())
    assert found is not None
    first, second = found["turns"]
    assert first["answer"] is None and first["new_messages"][0]["summary"] == "a"
    assert second["answer"]["summary"] == "ok"
    assert second["usage"]["output_tokens"] == 2**63 - 1  # clamped to SQLite's integers
