"""The shell tool with real subprocesses: argv and lines, cwd, timeouts, output cap, policy."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from lynkr.agent.tools.shell import ShellTool, run_process
from lynkr.policy import Policy
from tests.agent.tools.conftest import ToolCaller

pytestmark = pytest.mark.anyio


def _text(result: Any) -> str:
    assert isinstance(result.content, str)
    return result.content


async def _gone(pid: int, within: float = 5.0) -> bool:
    """The process has exited (or is a zombie waiting for init) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()  # noqa: ASYNC240 - procfs, no disk
            state = stat.split(") ", 1)[1][0]
        except (FileNotFoundError, IndexError):
            return True
        if state in "ZX":
            return True
        await asyncio.sleep(0.05)
    return False


async def test_argv_and_line(tools: ToolCaller, workspace: Path) -> None:
    assert _text(await tools("lynkr_shell", {"argv": ["echo", "hi there"]})).endswith("\nhi there")
    line = _text(await tools("lynkr_shell", {"command": "echo a && echo b >&2; exit 3"}))
    assert line.startswith("exit code 3") and line.endswith("a\nb")


async def test_cwd_is_inside_the_workspace(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "sub").mkdir()
    assert _text(await tools("lynkr_shell", {"argv": ["pwd"], "cwd": "sub"})).endswith(
        str(workspace / "sub")
    )
    assert _text(await tools("lynkr_shell", {"argv": ["pwd"]})).endswith(str(workspace))
    assert (await tools("lynkr_shell", {"argv": ["pwd"], "cwd": "missing"})).is_error


async def test_exactly_one_of_command_and_argv(tools: ToolCaller) -> None:
    assert "exactly one" in _text(await tools("lynkr_shell", {}))
    assert "exactly one" in _text(await tools("lynkr_shell", {"command": "true", "argv": ["true"]}))
    unknown = await tools("lynkr_shell", {"argv": ["no-such-program-here"]})
    assert unknown.is_error and "command not found" in _text(unknown)


async def test_timeout_kills_the_whole_process_group(tools: ToolCaller, workspace: Path) -> None:
    started = time.monotonic()
    line = "sleep 300 & echo $! > bg.pid; sleep 300"
    result = await tools("lynkr_shell", {"command": line, "timeout_seconds": 0.5})
    assert time.monotonic() - started < 8
    assert result.is_error and "timed out after 0.5 s" in _text(result)
    assert await _gone(int((workspace / "bg.pid").read_text()))


async def test_background_children_do_not_outlive_the_call(
    tools: ToolCaller, workspace: Path
) -> None:
    started = time.monotonic()
    result = await tools("lynkr_shell", {"command": "sleep 300 & echo $! > bg.pid; echo started"})
    assert time.monotonic() - started < 8
    assert _text(result).endswith("started")
    assert await _gone(int((workspace / "bg.pid").read_text()))


def test_timeout_is_capped_by_the_config(workspace: Path) -> None:
    tool = ShellTool(timeout_seconds=0.5)
    assert tool.max_timeout == 0.5
    with pytest.raises(ValueError, match="positive"):
        ShellTool(timeout_seconds=0)


async def test_output_cap_keeps_head_and_tail(tools: ToolCaller) -> None:
    script = "print('HEAD' + 'x' * 200000 + 'TAIL')"
    text = _text(await tools("lynkr_shell", {"argv": ["python3", "-c", script]}))
    assert "HEAD" in text and "TAIL" in text
    assert "bytes of output omitted" in text and len(text) < 4096 + 200


async def test_run_process_directly(workspace: Path) -> None:
    result = await run_process(
        ["sh", "-c", "printf 'abc'; exit 7"],
        cwd=workspace,
        env={"PATH": os.environ["PATH"]},
        timeout=5,
        max_output_bytes=100,
    )
    assert (result.exit_code, result.output, result.timed_out) == (7, "abc", False)


async def test_policy_checks_the_line_and_argv(tools: ToolCaller) -> None:
    policy = Policy()
    for arguments in ({"command": "ls; rm -rf /"}, {"argv": ["rm", "-rf", "/"]}):
        result = await tools("lynkr_shell", arguments, policy)
        assert result.is_error and "policy rule shell.builtin_deny" in _text(result)
    escape = await tools("lynkr_shell", {"command": "cat ../outside.txt"}, policy)
    assert "policy rule files.workspace_only" in _text(escape)
    strict = Policy.from_data({"shell": {"default": "deny", "allow": ["echo"]}})
    assert not (await tools("lynkr_shell", {"argv": ["echo", "ok"]}, strict)).is_error
    assert "policy rule shell.default" in _text(
        await tools("lynkr_shell", {"argv": ["ls"]}, strict)
    )


async def test_cancelling_the_call_kills_the_process(
    registry: Any, context: Any, workspace: Path
) -> None:
    arguments = {"command": "echo $$ > main.pid; sleep 300"}
    task = asyncio.ensure_future(registry.execute("lynkr_shell", arguments, context()))
    # The shell is another process: poll for its whole pid line, for at most 10 s
    # (the file exists, empty, a moment before echo writes it).
    pid_file, deadline = workspace / "main.pid", time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().endswith("\n")):
        assert time.monotonic() < deadline, "the shell never wrote main.pid"
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await _gone(int((workspace / "main.pid").read_text()))
