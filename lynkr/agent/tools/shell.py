"""The shell family: run an argv or a shell line in the workspace, bounded in time and output.

`lynkr_shell` takes either `argv` (`["pytest", "-q"]`, executed directly, no
shell) or `command` (a line run by `bash -c`, or `sh -c` without bash). The
policy's evaluator sees both as one line (it joins an argv with
`shlex.join`), so its shell analysis applies to either.

Bounds, for every process this module starts (`run_process`, also used by the
tests family and the grep tool):

- its own session and process group; at the timeout, on cancellation, and as
  soon as the main process exits, the whole group is killed (SIGKILL), so a
  background child neither outlives the call nor keeps it waiting;
- stdin is /dev/null; stdout and stderr are merged and capped: the first and
  last halves of `max_output_bytes` are kept, the middle is counted;
- the environment is `ToolContext.env` (scrubbed of lynkr's secrets), never
  lynkr's own; the working directory is confined to the workspace.

Every process runs through the context's sandbox (`lynkr.sandbox`,
`tools.sandbox`): with bubblewrap, in namespaces of its own that see the
system read-only, the workspace as the only writable place and none of
lynkr's files, processes or network. The policy's analysis of the line is a
convenience on top; the sandbox is the boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    object_schema,
    resolve_path,
)
from lynkr.sandbox import Sandbox

__all__ = ["ProcessResult", "ShellTool", "run_process", "shell_argv"]

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT = 65_536
_CHUNK = 65_536
_READ_GRACE = 2.0


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How a process ended and what it printed (stdout and stderr merged, capped)."""

    exit_code: int | None  # None when it was killed at the timeout
    output: str
    timed_out: bool
    duration: float
    omitted_bytes: int

    def summary(self, timeout: float) -> str:
        """One header line: the exit code (or the timeout) and the duration."""
        if self.timed_out:
            return f"timed out after {timeout:g} s; the process group was killed"
        return f"exit code {self.exit_code} ({self.duration:.1f} s)"


class _Capture:
    """Keeps the first and last `limit // 2` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > self.half:
            del self.tail[: len(self.tail) - self.half]

    def text(self) -> tuple[str, int]:
        omitted = self.total - len(self.head) - len(self.tail)
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if omitted <= 0:
            return head + tail, 0
        return f"{head}\n[… {omitted} bytes of output omitted …]\n{tail}", omitted


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - the process is killed at it, not just abandoned
    max_output_bytes: int,
    sandbox: Sandbox | None = None,
) -> ProcessResult:
    """Run `argv` (no shell) in its own process group, inside `sandbox` when given;
    see the module docstring for bounds."""
    started = time.monotonic()
    if sandbox is not None:
        command = sandbox.wrap(argv, cwd, env)
        argv, cwd, env = command.argv, command.cwd, command.env
    # Our own pipe, not asyncio's: `Process.wait()` would also wait for its pipes to close,
    # which a background child holding stdout delays until the timeout.
    read_end, write_end = os.pipe()
    try:
        process = await _start(argv, cwd, env, write_end)
    except BaseException:
        os.close(read_end)  # the command never started: nobody will read this pipe
        raise
    finally:
        os.close(write_end)
    capture = _Capture(max_output_bytes)
    try:
        reader, transport = await _reader(read_end)
    except BaseException:
        os.close(read_end)
        raise
    drain = asyncio.create_task(_drain(reader, capture))
    timed_out = False
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        timed_out = True
    finally:  # also on cancellation: nothing the call started outlives it
        _kill_group(process.pid)
        await _reap(process)
        await _finish(drain)
        transport.close()
    output, omitted = capture.text()
    exit_code = None if timed_out else process.returncode
    return ProcessResult(exit_code, output, timed_out, time.monotonic() - started, omitted)


async def _start(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], output: int
) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ToolError(f"command not found: {argv[0]!r} (not on the tools' PATH)") from exc
    except PermissionError as exc:
        raise ToolError(f"command {argv[0]!r} is not executable") from exc


async def _reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CHUNK)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader, transport


async def _drain(stream: asyncio.StreamReader, capture: _Capture) -> None:
    while chunk := await stream.read(_CHUNK):
        capture.add(chunk)


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Collect the killed process's exit status (SIGKILL makes this quick)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), _READ_GRACE)


async def _finish(drain: asyncio.Task[None]) -> None:
    """Wait briefly for the pipe to close (every writer was killed), then give up on it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(drain, _READ_GRACE)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pid, signal.SIGKILL)


def shell_argv(line: str) -> list[str]:
    """The argv that runs a shell line: bash without rc files when present, else sh."""
    bash = shutil.which("bash", path="/usr/bin:/bin")
    if bash:
        return [bash, "--noprofile", "--norc", "-c", line]
    return ["/bin/sh", "-c", line]


_SCHEMA = object_schema(
    {
        "command": {
            "type": "string",
            "minLength": 1,
            "description": "A shell line, run by bash -c (give this or argv, not both).",
        },
        "argv": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "description": "A program and its arguments, run without a shell.",
        },
        "cwd": {
            "type": "string",
            "description": "Working directory, relative to the workspace root (default: root).",
        },
        "timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Kill the command after this many seconds (capped by the config).",
        },
    }
)


class ShellTool:
    """`lynkr_shell`: run a command in the workspace."""

    def __init__(
        self,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        if timeout_seconds <= 0 or max_output_bytes < 1:
            raise ValueError("tools.shell: timeout_seconds and max_output_bytes must be positive")
        self.max_timeout = timeout_seconds
        self.max_output_bytes = max_output_bytes
        self.timeout = timeout_seconds + 2 * _READ_GRACE  # the registry's outer bound
        self.spec = ToolSpec(
            name="lynkr_shell",
            description=(
                "Run a command in the workspace (in lynkr's sandbox) and return its exit code and "
                "output (stdout and stderr merged). Give `argv` to run a program directly or "
                "`command` for a shell line (pipes, &&). Runs with no stdin, a scrubbed "
                f"environment and a timeout of at most {timeout_seconds:g} s; output over "
                f"{max_output_bytes} bytes keeps its beginning and end. Background processes "
                "are killed when the command returns. Prefer the lynkr_file_* and lynkr_git_* "
                "tools for reading, editing and git."
            ),
            input_schema=_SCHEMA,
            family="shell",
            canonical="shell",
        )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        argv = _argv(arguments)
        cwd = resolve_path(context, str(arguments.get("cwd") or "."))
        if not cwd.is_dir():
            raise ToolError(f"cwd {arguments.get('cwd')!r} is not a directory in the workspace")
        timeout = min(float(arguments.get("timeout_seconds") or self.max_timeout), self.max_timeout)
        result = await run_process(
            argv,
            cwd=cwd,
            env=context.env,
            timeout=timeout,
            max_output_bytes=self.max_output_bytes,
            sandbox=context.sandbox,
        )
        text = f"{result.summary(timeout)}\n{result.output}".rstrip("\n")
        return ToolResult(text, is_error=result.timed_out)


def _argv(arguments: Mapping[str, Any]) -> list[str]:
    command, argv = arguments.get("command"), arguments.get("argv")
    if (command is None) == (argv is None):
        raise ToolError("give exactly one of `command` (a shell line) or `argv` (a list)")
    if argv is not None:
        if any("\x00" in part for part in argv):
            raise ToolError("argv must not contain NUL bytes")
        return list(argv)
    line = str(command)
    if "\x00" in line:
        raise ToolError("command must not contain NUL bytes")
    return shell_argv(line)
