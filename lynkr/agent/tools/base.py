"""What every server-side tool is made of: its spec, its result, its context, and shared helpers.

A tool is any object with a `spec` (`ToolSpec`) and an `async run(arguments,
context)`. The registry (`registry.py`) validates the arguments, asks the
policy, runs the tool under a timeout and turns any exception into an
`is_error` result; a tool reports a mistake the model can fix by raising
`ToolError` with a message that says what was wrong and how to fix it.

Paths: every path a model gives goes through `resolve_path`, which resolves it
the way the kernel would (`..`, every symlink, `~`) with the policy's
`Workspace` and refuses anything whose real location is not the workspace root
or below it (`os.path.commonpath`, not a string prefix: `/ws-evil` is not in
`/ws`). Writes into the repository's `.git` directory are always refused: a
written `.git/config` or hook would make the next git operation run a program
the model chose.

State (edit history, test runs, tasks) lives in the `ToolStore` of the
context (`lynkr.stores.tools`): one SQLite file in the data directory,
opened with the server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lynkr.policy import Workspace
from lynkr.sandbox import Sandbox, Unconfined
from lynkr.stores.tools import ToolStore

__all__ = [
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "display_path",
    "is_protected",
    "object_schema",
    "resolve_path",
]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """How the model sees a tool, and which family and canonical name the policy sees."""

    name: str  # lynkr's namespaced name, e.g. "lynkr_file_read", "lynkr_git_status"
    description: str  # for the model: what it does, when to use it, limits
    input_schema: dict[str, Any]  # JSON Schema (type object, additionalProperties false)
    family: str  # "files" | "shell" | "git" | "tests" | "tasks"
    canonical: str  # the policy's canonical name ("file.read", "shell", "git.commit")


@dataclass(slots=True)
class ToolResult:
    """An Anthropic `tool_result` content: text, or blocks (text and images)."""

    content: str | list[dict[str, Any]]
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Where and for whom a tool call runs.

    `env` is the environment tools may see, already scrubbed of lynkr's secrets
    (`registry.scrubbed_environment`); tools never read `os.environ`.
    `allow_outside` mirrors `tools.workspace.allow_outside`: when true, paths
    outside the workspace are left to the policy's file rules.
    `protected` are lynkr's own files (its config, the policy file, the data
    dir): no tool reads or writes them, whatever the policy says, because a
    model that rewrites the policy has no policy at the next start.
    """

    workspace: Path
    store: ToolStore
    policy: object | None
    env: Mapping[str, str]
    session_id: str | None
    turn_tool_calls: int = 0
    allow_outside: bool = False
    protected: tuple[Path, ...] = ()
    # Where the processes tools start run (`tools.sandbox`); Unconfined = as lynkr's user.
    sandbox: Sandbox = field(default_factory=Unconfined)
    # Long-term memory (`lynkr.memory`): the service, and whose memories this request's
    # calls work on (set by the memory layer); None when memory is off.
    memory: object | None = None
    memory_scope: object | None = None


@runtime_checkable
class Tool(Protocol):
    """A server-side tool: a spec and a coroutine that runs one call."""

    spec: ToolSpec

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult: ...


class ToolError(Exception):
    """A failure the model caused and can fix; its message is shown as the `is_error` result."""


def object_schema(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON Schema for a tool's input: an object with exactly these properties."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": dict(properties),
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


def resolve_path(context: ToolContext, path: str, *, write: bool = False) -> Path:
    """The real location `path` names, refused unless it lies inside the workspace.

    Relative paths start at the workspace root. The message of a refusal
    quotes the model's own string, never a resolved server path.
    """
    if not path or "\x00" in path:
        raise ToolError(f"invalid path {path!r}: give a non-empty path without NUL bytes")
    workspace = Workspace(root=str(context.workspace))
    resolved = workspace.resolve(path)
    if not context.allow_outside and not workspace.contains(resolved):
        raise ToolError(
            f"path {path!r} is outside the workspace; give a path inside it "
            "(relative paths start at the workspace root)"
        )
    if is_protected(context, Path(resolved)):
        raise ToolError(
            f"path {path!r} is one of lynkr's own files (its config, policies or data), "
            "which tools never read or write, whatever the policy says"
        )
    if write and _in_git_directory(workspace, resolved):
        raise ToolError(
            f"path {path!r} is inside the repository's .git directory, which tools never "
            "write; use the lynkr_git_* tools to change the repository"
        )
    return Path(resolved)


def is_protected(context: ToolContext, path: Path) -> bool:
    """Whether `path` (resolved) is, or lies inside, one of lynkr's own files."""
    return any(path == own or path.is_relative_to(own) for own in context.protected)


def _in_git_directory(workspace: Workspace, resolved: str) -> bool:
    if not workspace.contains(resolved):
        return False
    relative = workspace.relative(resolved)
    return ".git" in relative.split("/")


def display_path(context: ToolContext, path: Path) -> str:
    """`path` relative to the workspace (`/`-separated), or `<outside>` when it is not in it."""
    root = os.path.realpath(context.workspace)
    try:
        if os.path.commonpath([root, str(path)]) != root:
            return "<outside the workspace>"
    except ValueError:
        return "<outside the workspace>"
    return Path(os.path.relpath(path, root)).as_posix()
