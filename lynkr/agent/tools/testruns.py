"""The tests family: run named test profiles from the config, keep each run, summarise them.

A profile is `{command, cwd, timeout_seconds}` under `tools.tests.profiles`.
The model chooses only the profile's name (an `enum` of the configured ones),
never any part of the command, so nothing it writes reaches a shell; the
command line is the operator's and runs with `bash -c` in the profile's
directory (confined to the workspace), with the scrubbed environment, under
the profile's timeout, its process group killed at the end (see `shell.py`).

Each run is kept in the tool store (profile, exit code, duration, timed
out, the last 8 KiB of output); `lynkr_tests_summary` reports the last runs
and the pass rate per profile. The commit tool records its `git.test_command`
runs here too, under the profile name `git.test_command`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    object_schema,
    resolve_path,
)
from lynkr.agent.tools.shell import run_process, shell_argv
from lynkr.stores.tools import TestRunRecord as TestRun

__all__ = ["TestProfile", "TestRun", "headline", "run_profile", "testrun_tools"]

TAIL_BYTES = 8192
DEFAULT_TIMEOUT = 600.0


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


def headline(run: TestRun) -> str:
    """`unit: passed in 1.2 s`, `… failed (exit code 1) …`, `… timed out …`."""
    if run.timed_out:
        state = "timed out"
    else:
        state = "passed" if run.passed else f"failed (exit code {run.exit_code})"
    return f"{run.profile}: {state} in {run.duration:.1f} s"


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
        sandbox=context.sandbox,
    )
    tail = result.output[-TAIL_BYTES:]
    run_id = await context.store.add_test_run(
        str(context.workspace),
        context.session_id,
        profile=profile.name,
        started=started,
        duration=result.duration,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        tail=tail,
    )
    return TestRun(
        run_id, profile.name, started, result.duration, result.exit_code, result.timed_out, tail
    )


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
            f"{headline(run)} (run {run.id})\n{run.tail.rstrip()}", is_error=run.timed_out
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
        workspace = str(context.workspace)
        rates = await context.store.pass_rates(workspace)
        if not rates:
            return ToolResult("no test runs recorded yet")
        last = int(arguments.get("last", 10))
        runs = await context.store.test_runs(workspace, arguments.get("profile"), last)
        lines = ["pass rate per profile:"]
        lines += [
            f"  {name}: {ok}/{total} passed ({100 * ok / total:.0f}%)" for name, total, ok in rates
        ]
        lines.append("last runs:")
        lines += [f"  #{r.id} {_when(r.started)} {headline(r)}" for r in runs]
        return ToolResult("\n".join(lines))


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def testrun_tools(profiles: Mapping[str, TestProfile]) -> list[Any]:
    """The tests family: the run tool (when profiles exist) and the summary."""
    tools: list[Any] = [RunTestsTool(profiles)] if profiles else []
    return [*tools, TestSummaryTool()]
