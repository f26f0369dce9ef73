"""What every git tool shares: opening the repository, checking arguments, the tool base.

The repository is the workspace root (`<root>/.git`); a workspace inside a
larger repository is not searched upwards, so a tool never touches a
repository outside the workspace. Every repository is opened with its hooks
removed, so no tool call runs `.git/hooks/*` (and the files tools never write
under `.git`, so the model cannot plant one).

Arguments the model gives are data, never options: refs and branch names are
checked with git's own ref-format rules and may not start with `-`
(`valid_ref`, and `commit_of` for revisions); paths go through the workspace
confinement (`repo_paths`).

A tool (`GitTool`) is its spec and the synchronous work it does on an open
repository; `run` does that work in a worker thread and closes the repository
after.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.objects import Commit, Tag
from dulwich.objectspec import parse_object
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from lynkr.agent.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, resolve_path

__all__ = [
    "BRANCH",
    "PATHS",
    "REF_DESCRIPTION",
    "REMOTE",
    "GitTool",
    "commit_of",
    "current_branch",
    "repo_paths",
    "short_date",
    "summary",
    "valid_ref",
]

_T = TypeVar("_T")
REF_DESCRIPTION = "A branch, tag or commit (HEAD, main, v1.2, a sha, HEAD~3)."
PATHS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "description": "Paths relative to the workspace root.",
}
BRANCH = {"type": "string", "minLength": 1, "description": "A branch name."}
REMOTE = {"type": "string", "minLength": 1, "description": "A configured remote (origin)."}


# ── opening the repository and checking arguments ───────────────────────────


def _open(context: ToolContext) -> Repo:
    try:
        repo = Repo(str(context.workspace))
    except NotGitRepository as exc:
        raise ToolError("the workspace root is not a git repository (no .git there)") from exc
    repo.hooks.clear()  # lynkr never runs repository hooks
    return repo


async def _with_repo(context: ToolContext, work: Callable[[Repo], _T]) -> _T:
    """Run `work` on the workspace's repository in a worker thread, closing it after."""

    def run() -> _T:
        with closing(_open(context)) as repo:
            return work(repo)

    return await asyncio.to_thread(run)


def valid_ref(name: str, what: str = "ref") -> str:
    """`name` if it is a well-formed ref name that cannot be read as an option, else ToolError."""
    if not name or name.startswith("-") or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise ToolError(f"invalid {what} {name!r}: it may not be empty or start with '-'")
    if not check_ref_format(Ref(b"refs/heads/" + name.encode("utf-8"))):
        raise ToolError(f"invalid {what} {name!r}: not a valid git ref name")
    return name


_REVISION = re.compile(r"(?P<base>.+?)(?P<suffix>(?:[~^][0-9]*)*)")


def _revision(name: str) -> str:
    """A revision (`HEAD~2`, `v1.0^`, a sha, a branch): a ref name, then `~N`/`^N` steps."""
    match = _REVISION.fullmatch(name)
    base = match["base"] if match else name
    if base == "HEAD" or (len(base) >= 4 and all(c in "0123456789abcdef" for c in base)):
        return name
    valid_ref(base, "revision")
    return name


def commit_of(repo: Repo, revision: str) -> Commit:
    """The commit a checked revision names (tags are followed; `~N` and `^` work)."""
    try:
        found = parse_object(repo, _revision(revision))
        while isinstance(found, Tag):
            found = repo[found.object[1]]
    except (KeyError, ValueError) as exc:
        raise ToolError(f"unknown revision {revision!r}") from exc
    if not isinstance(found, Commit):
        raise ToolError(f"revision {revision!r} does not name a commit")
    return found


def repo_paths(context: ToolContext, paths: list[str]) -> list[str]:
    """Workspace-confined paths, relative to the repository root, `/`-separated."""
    root = os.path.realpath(context.workspace)
    result = []
    for path in paths:
        resolved = resolve_path(context, path)
        relative = os.path.relpath(resolved, root)
        if relative.startswith(".."):
            raise ToolError(f"path {path!r} is outside the repository")
        result.append(Path(relative).as_posix())
    return result


def current_branch(repo: Repo) -> str | None:
    """The checked-out branch; None on a detached HEAD or before the first commit."""
    try:
        return porcelain.active_branch(repo).decode("utf-8", "replace")
    except (KeyError, IndexError, ValueError):
        return None  # detached HEAD or no commit yet


# ── how a commit shows ───────────────────────────────────────────────────────


def summary(message: str) -> str:
    """A commit message's first line."""
    return message.strip().splitlines()[0] if message.strip() else ""


def short_date(timestamp: int) -> str:
    """A commit time as `YYYY-MM-DD HH:MM`, in UTC."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


# ── the tool base ────────────────────────────────────────────────────────────


class GitTool:
    """A git tool: its spec and the synchronous work it does on the repository."""

    spec: ToolSpec

    def __init__(self, action: str, description: str, schema: dict[str, Any]) -> None:
        self.spec = ToolSpec(f"lynkr_git_{action}", description, schema, "git", f"git.{action}")

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        work = self.work(arguments, context)
        return ToolResult(await _with_repo(context, work))

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        raise NotImplementedError
