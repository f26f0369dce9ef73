"""The tests family: run named test profiles from the config, keep each run, summarise them.

A profile is `{command, cwd, timeout_seconds}` under `tools.tests.profiles`.
The model chooses only the profile's name (an `enum` of the configured ones),
never any part of the command, so nothing it writes reaches a shell; the
command line is the operator's and runs with `bash -c` in the profile's
directory (confined to the workspace), with the scrubbed environment, under
the profile's timeout, its process group killed at the end (see `shell.py`).

Each run is stored in `tool_test_runs` (profile, exit code, duration, timed
out, the last 8 KiB of output); `lynkr_tests_summary` reports the last runs
and the pass rate per profile. The commit tool records its `git.test_command`
runs here too, under the profile name `git.test_command`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    in_database,
    object_schema,
    resolve_path,
)
from lynkr.agent.tools.shell import run_process, shell_argv

__all__ = ["TestProfile", "TestRun", "run_profile", "testrun_tools"]

TAIL_BYTES = 8192
DEFAULT_TIMEOUT = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_test_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    session_id TEXT,
    profile TEXT NOT NULL,
    started REAL NOT NULL,
    duration REAL NOT NULL,
    exit_code INTEGER,
    timed_out INTEGER NOT NULL,
    tail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tool_test_runs_profile ON tool_test_runs (workspace, profile, id);
"""


@dataclass(frozen=True, slots=True)
class TestProfile:
    """One `tools.tests.profiles` entry."""

    __test__ = False  # not a pytest class

    name: str
    command: str
    cwd: str = "."
    timeout_seconds: float = DEFAULT_TIMEOUT

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> TestProfile:
        """Build from config; `ValueError` names the key that is wrong."""
        command = options.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ValueError(f"tools.tests.profiles.{name}.command must be a non-empty string")
        timeout = float(options.get("timeout_seconds", DEFAULT_TIMEOUT))
        if timeout <= 0:
            raise ValueError(f"tools.tests.profiles.{name}.timeout_seconds must be positive")
        return cls(name, command, str(options.get("cwd", ".")), timeout)


@dataclass(frozen=True, slots=True)
class TestRun:
    """One stored run of a profile."""

    __test__ = False

    id: int
    profile: str
    started: float
    duration: float
    exit_code: int | None
    timed_out: bool
    tail: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def headline(self) -> str:
        if self.timed_out:
            state = "timed out"
        else:
            state = "passed" if self.passed else f"failed (exit code {self.exit_code})"
        return f"{self.profile}: {state} in {self.duration:.1f} s"


async def run_profile(profile: TestProfile, context: ToolContext) -> TestRun:
    """Run `profile` in the workspace and store the run."""
    cwd = resolve_path(context, profile.cwd)
    if not cwd.is_dir():
        raise ToolError(f"test profile {profile.name!r}: cwd {profile.cwd!r} is not a directory")
    started = time.time()
    result = await run_process(
        shell_argv(profile.command),
        cwd=cwd,
        env=context.env,
        timeout=profile.timeout_seconds,
        max_output_bytes=2 * TAIL_BYTES,
    )
    tail = result.output[-TAIL_BYTES:]
    row = (
        str(context.workspace),
        context.session_id,
        profile.name,
        started,
        result.duration,
        result.exit_code,
        int(result.timed_out),
        tail,
    )

    def insert(db: sqlite3.Connection) -> int:
        cursor = db.execute(
            "INSERT INTO tool_test_runs (workspace, session_id, profile, started, duration,"
            " exit_code, timed_out, tail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        return int(cursor.lastrowid or 0)

    run_id = await in_database(context.data_dir, _SCHEMA, insert)
    return TestRun(
        run_id, profile.name, started, result.duration, result.exit_code, result.timed_out, tail
    )


async def recent_runs(context: ToolContext, profile: str | None, limit: int) -> list[TestRun]:
    """The last `limit` runs in this workspace (of one profile), newest first."""
    query = "SELECT id, profile, started, duration, exit_code, timed_out, tail FROM tool_test_runs"
    query += " WHERE workspace = ?" + (" AND profile = ?" if profile else "")
    query += " ORDER BY id DESC LIMIT ?"
    params = (str(context.workspace), *((profile,) if profile else ()), limit)

    def select(db: sqlite3.Connection) -> list[TestRun]:
        return [
            TestRun(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6])
            for r in db.execute(query, params)
        ]

    return await in_database(context.data_dir, _SCHEMA, select)


async def _pass_rates(context: ToolContext) -> list[tuple[str, int, int]]:
    """(profile, runs, passed) for every profile run in this workspace."""

    def select(db: sqlite3.Connection) -> list[tuple[str, int, int]]:
        rows = db.execute(
            "SELECT profile, COUNT(*), SUM(exit_code = 0 AND timed_out = 0) FROM tool_test_runs"
            " WHERE workspace = ? GROUP BY profile ORDER BY profile",
            (str(context.workspace),),
        )
        return [(r[0], int(r[1]), int(r[2] or 0)) for r in rows]

    return await in_database(context.data_dir, _SCHEMA, select)


class RunTestsTool:
    """`lynkr_tests_run`."""

    def __init__(self, profiles: Mapping[str, TestProfile]) -> None:
        if not profiles:
            raise ValueError("tools.tests.profiles: configure at least one profile")
        self.profiles = dict(profiles)
        self.timeout = max(p.timeout_seconds for p in profiles.values()) + 10
        listing = "; ".join(f"{n}: `{p.command}`" for n, p in sorted(self.profiles.items()))
        self.spec = ToolSpec(
            "lynkr_tests_run",
            "Run a configured test profile in the workspace and return whether it passed, its "
            f"duration and the end of its output. Profiles: {listing}. Each run is recorded "
            "(lynkr_tests_summary).",
            object_schema({"profile": {"enum": sorted(self.profiles)}}, ("profile",)),
            "tests",
            "tests.run",
        )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        profile = self.profiles.get(arguments["profile"])
        if profile is None:
            raise ToolError(f"no test profile {arguments['profile']!r}")
        run = await run_profile(profile, context)
        return ToolResult(
            f"{run.headline()} (run {run.id})\n{run.tail.rstrip()}", is_error=run.timed_out
        )


class TestSummaryTool:
    """`lynkr_tests_summary`."""

    __test__ = False

    spec = ToolSpec(
        "lynkr_tests_summary",
        "Summarise the recorded test runs in this workspace: the pass rate per profile and "
        "the last runs (optionally of one profile), newest first.",
        object_schema(
            {
                "profile": {"type": "string", "minLength": 1},
                "last": {"type": "integer", "minimum": 1, "maximum": 100},
            }
        ),
        "tests",
        "tests.summary",
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        rates = await _pass_rates(context)
        if not rates:
            return ToolResult("no test runs recorded yet")
        runs = await recent_runs(context, arguments.get("profile"), int(arguments.get("last", 10)))
        lines = ["pass rate per profile:"]
        lines += [
            f"  {name}: {ok}/{total} passed ({100 * ok / total:.0f}%)" for name, total, ok in rates
        ]
        lines.append("last runs:")
        lines += [f"  #{r.id} {_when(r.started)} {r.headline()}" for r in runs]
        return ToolResult("\n".join(lines))


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def testrun_tools(profiles: Mapping[str, TestProfile]) -> list[Any]:
    """The tests family: the run tool (when profiles exist) and the summary."""
    tools: list[Any] = [RunTestsTool(profiles)] if profiles else []
    return [*tools, TestSummaryTool()]
