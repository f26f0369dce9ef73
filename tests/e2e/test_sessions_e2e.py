"""Sessions with the real Claude Code CLI (docs/protocol.md A.3/A.4).

* `test_claude_code_requests_make_one_session_and_one_line` needs only the CLI and the fake
  upstream: the requests Claude Code really sends in a 2-turn tool round trip, replayed into a
  `SessionStore`, land in one session (the CLI's id) on one branch, each message stored once.
* `test_claude_code_session_through_lynkr` drives `lynkr serve` and reads the session back
  from `GET /v1/lynkr/sessions/{id}`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, text, tool_use

from e2e.test_claude_code import claude_bin, describe, run_claude
from lynkr.sessions import SQLiteSessionStore as SessionStore
from lynkr.sessions import derive_session_id

__all__ = ["claude_bin"]  # the session fixture, shared with test_claude_code.py
pytestmark = pytest.mark.e2e


def _script(fake: FakeAnthropic) -> list[dict[str, Any]]:
    """The two answers of the round trip: a Bash tool call, then the final text."""
    first = tool_use("echo LYNKR_SESSION_OK", tool_id="toolu_session_1")
    second = text("The command printed LYNKR_SESSION_OK. Done.")
    fake.script(first, second)
    fake.default = text("unexpected extra request")
    return [first.message, second.message]  # type: ignore[list-item]


def test_claude_code_requests_make_one_session_and_one_line(
    claude_bin: Path,
    fake: FakeAnthropic,
    tmp_path: Path,
) -> None:
    answers = _script(fake)
    done, result = run_claude(
        claude_bin, fake.url, tmp_path, "run echo LYNKR_SESSION_OK", "--allowedTools", "Bash"
    )
    assert done.returncode == 0, describe(done, fake)
    requests = fake.message_requests()
    assert len(requests) == 2, describe(done, fake)
    ids = {derive_session_id(r.headers, r.body) for r in requests}
    assert ids == {result["session_id"]}, (ids, result.get("session_id"))

    async def replay() -> tuple[list[Any], dict[str, Any] | None, dict[str, int]]:
        store = SessionStore(tmp_path / "sessions.sqlite3")
        refs = []
        for record, answer in zip(requests, answers, strict=True):
            ref = await store.record_request(result["session_id"], record.body)
            await store.record_answer(ref, answer)
            refs.append(ref)
        session = await store.get(result["session_id"])
        stats = await store.stats()
        await store.close()
        return refs, session, stats

    refs, session, stats = asyncio.run(replay())
    first_count = len(requests[0].body["messages"])
    assert [r.branch for r in refs] == [0, 0], session
    assert [r.added for r in refs] == [first_count, 2], session  # the tool_use echo + its result
    assert stats["messages"] == len(requests[1].body["messages"])
    # The answer recorded after turn 1 and its echo in request 2 are one stored row.
    assert stats["blobs"] == stats["messages"] + 1, stats
    assert session is not None and session["usage"]["output_tokens"] == 20


def _session(url: str, session_id: str, turns: int) -> dict[str, Any]:
    """The session once `turns` turns are answered (recording finishes after the response)."""
    deadline = time.monotonic() + 10
    with httpx.Client(timeout=5, trust_env=False) as client:
        while True:
            response = client.get(f"{url}/v1/lynkr/sessions/{session_id}")
            found = response.json()
            answered = [t for t in found.get("turns", []) if t.get("answer")]
            if response.status_code == 200 and len(answered) >= turns:
                return dict(found)
            if time.monotonic() > deadline:
                pytest.fail(f"session {session_id} not complete: {response.status_code} {found}")
            time.sleep(0.1)


def test_claude_code_session_through_lynkr(
    claude_bin: Path,
    fake: FakeAnthropic,
    lynkr_server: Callable[..., LynkrServer],
    tmp_path: Path,
) -> None:
    server = lynkr_server("sessions")
    _script(fake)
    done, result = run_claude(
        claude_bin, server.url, tmp_path, "run echo LYNKR_SESSION_OK", "--allowedTools", "Bash"
    )
    assert done.returncode == 0, describe(done, fake) + server.stderr_text()
    assert "Done." in result.get("result", ""), describe(done, fake)
    session_id = result["session_id"]
    session = _session(server.url, session_id, 2)

    main = [t for t in session["turns"] if t["branch"] == 0]
    assert session["id"] == session_id and session["branch_count"] == 1, session
    assert len(main) == 2, json.dumps(session, indent=1)
    first, second = main
    assert first["answer"]["stop_reason"] == "tool_use"
    assert "tool_use Bash" in first["answer"]["summary"]
    assert [m["role"] for m in second["new_messages"]] == ["assistant", "user"]
    assert "LYNKR_SESSION_OK" in second["new_messages"][1]["summary"]
    assert second["answer"]["summary"].startswith("The command printed LYNKR_SESSION_OK")
    for turn in main:
        assert turn["usage"]["input_tokens"] > 0 and turn["usage"]["output_tokens"] > 0
    totals = {k: sum(t["usage"][k] for t in session["turns"]) for k in session["usage"]}
    assert session["usage"] == totals

    with httpx.Client(timeout=5, trust_env=False) as client:
        listed = client.get(f"{server.url}/v1/lynkr/sessions").json()
        missing = client.get(f"{server.url}/v1/lynkr/sessions/no-such-session")
    assert session_id in [s["id"] for s in listed["data"]]
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
