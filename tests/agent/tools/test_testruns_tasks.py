"""Test profiles (runs stored and summarised) and the task tracker, on a real SQLite file."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from lynkr.agent.tools.testruns import TestProfile
from lynkr.stores.tools import DATABASE_NAME
from tests.agent.tools.conftest import ToolCaller

pytestmark = pytest.mark.anyio


def _text(result: Any) -> str:
    assert isinstance(result.content, str)
    return result.content


async def test_runs_are_stored_and_summarised(tools: ToolCaller, data_dir: Path) -> None:
    assert _text(await tools("lynkr_tests_summary", {})) == "no test runs recorded yet"
    passed = await tools("lynkr_tests_run", {"profile": "unit"})
    assert not passed.is_error and _text(passed).startswith("unit: passed in")
    assert "all good" in _text(passed)
    failed = _text(await tools("lynkr_tests_run", {"profile": "broken"}))
    assert failed.startswith("broken: failed (exit code 1)") and "1 failed" in failed
    await tools("lynkr_tests_run", {"profile": "unit"})
    summary = _text(await tools("lynkr_tests_summary", {}))
    assert "broken: 0/1 passed (0%)" in summary and "unit: 2/2 passed (100%)" in summary
    last = _text(await tools("lynkr_tests_summary", {"profile": "unit", "last": 1}))
    assert last.count("#") == 1 and "#3 " in last
    with closing(sqlite3.connect(data_dir / DATABASE_NAME)) as db:
        rows = db.execute("SELECT profile, exit_code, timed_out FROM tool_test_runs").fetchall()
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [("unit", 0, 0), ("broken", 1, 0), ("unit", 0, 0)]
    assert mode == "wal"


async def test_a_profile_that_runs_too_long_is_killed(tools: ToolCaller) -> None:
    started = time.monotonic()
    result = await tools("lynkr_tests_run", {"profile": "slow"})
    assert time.monotonic() - started < 8
    assert result.is_error and "slow: timed out" in _text(result)
    assert "slow: 0/1 passed" in _text(await tools("lynkr_tests_summary", {}))


def test_profile_config_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"tools\.tests\.profiles\.x\.command"):
        TestProfile.from_options("x", {"command": ""})
    with pytest.raises(ValueError, match="timeout_seconds"):
        TestProfile.from_options("x", {"command": "true", "timeout_seconds": 0})


async def test_tasks_crud(tools: ToolCaller) -> None:
    assert _text(await tools("lynkr_tasks_list", {})) == "no tasks"
    assert _text(await tools("lynkr_tasks_create", {"title": "write docs"})) == "created task #1"
    await tools(
        "lynkr_tasks_create", {"title": "fix bug", "description": "in parser", "status": "blocked"}
    )
    assert _text(await tools("lynkr_tasks_list", {})) == (
        "#1 [todo] write docs\n#2 [blocked] fix bug — in parser"
    )
    updated = _text(await tools("lynkr_tasks_update", {"id": 1, "status": "done", "title": "docs"}))
    assert updated == "#1 [done] docs"
    assert _text(await tools("lynkr_tasks_list", {"status": "done"})) == "#1 [done] docs"
    assert "deleted task #2" in _text(await tools("lynkr_tasks_delete", {"id": 2}))
    assert _text(await tools("lynkr_tasks_list", {})) == "#1 [done] docs"


async def test_task_errors(tools: ToolCaller) -> None:
    missing = await tools("lynkr_tasks_update", {"id": 9, "status": "done"})
    assert missing.is_error and "no task 9" in _text(missing)
    await tools("lynkr_tasks_create", {"title": "t"})
    assert "at least one" in _text(await tools("lynkr_tasks_update", {"id": 1}))
    bad = await tools("lynkr_tasks_update", {"id": 1, "status": "finished"})
    assert bad.is_error and "$.status" in _text(bad)
    assert (await tools("lynkr_tasks_delete", {"id": 9})).is_error


async def test_tasks_belong_to_their_workspace(tools: ToolCaller, tmp_path: Path) -> None:
    await tools("lynkr_tasks_create", {"title": "here"})
    other = tmp_path / "other-ws"
    other.mkdir()
    assert _text(await tools("lynkr_tasks_list", {}, workspace=other)) == "no tasks"
