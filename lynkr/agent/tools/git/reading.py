"""The git tools that only look: status, diff, log and branches.

A diff shows file contents, so it leaves out the files the policy will not
let `lynkr_file_read` open (.env, keys…), the same check grep applies.
`show_status` is also what staging, unstaging and stashing answer with.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from dulwich import porcelain
from dulwich.objects import Commit
from dulwich.repo import Repo

from lynkr.agent.tools.base import ToolContext, object_schema
from lynkr.agent.tools.files.searching import readable_by_policy
from lynkr.agent.tools.git.repository import (
    PATHS,
    REF_DESCRIPTION,
    GitTool,
    commit_of,
    current_branch,
    repo_paths,
    short_date,
    summary,
)

__all__ = ["BranchesTool", "DiffTool", "LogTool", "StatusTool", "show_status"]

MAX_DIFF_BYTES = 200_000
MAX_LISTED = 200


def _names(items: Any) -> list[str]:
    return sorted(i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i) for i in items)


def _section(title: str, names: list[str]) -> list[str]:
    if not names:
        return []
    shown = [f"  {n}" for n in names[:MAX_LISTED]]
    if len(names) > MAX_LISTED:
        shown.append(f"  … and {len(names) - MAX_LISTED} more")
    return [f"{title}:", *shown]


# ── the work each tool does, synchronously, on an open repository ───────────


def show_status(repo: Repo) -> str:
    """The branch and the staged, unstaged and untracked files, as `lynkr_git_status` shows."""
    status = porcelain.status(repo, untracked_files="normal")
    lines = [f"branch: {current_branch(repo) or '(detached HEAD or no commits yet)'}"]
    for kind in ("add", "modify", "delete"):
        lines += _section(f"staged ({kind})", _names(status.staged[kind]))
    lines += _section("not staged (modified or deleted)", _names(status.unstaged))
    lines += _section("untracked", _names(status.untracked))
    return "\n".join(lines) if len(lines) > 1 else lines[0] + "\nnothing to commit, clean"


def _diff(repo: Repo, staged: bool, paths: list[str]) -> str:
    out = io.BytesIO()
    porcelain.diff(repo, staged=staged, paths=paths or None, outstream=out)
    data = out.getvalue()
    text = data[:MAX_DIFF_BYTES].decode("utf-8", "replace")
    if len(data) > MAX_DIFF_BYTES:
        text += f"\n[… diff cut at {MAX_DIFF_BYTES} bytes; give `paths` to see the rest]"
    return text or "no differences"


def _without_unreadable(diff: str, context: ToolContext) -> str:
    """The diff minus the files the policy will not let be read (.env, keys…).

    A diff shows file contents, so it must not show what `lynkr_file_read` may not.
    """
    sections = re.split(r"(?m)^(?=diff --git )", diff)
    kept = []
    for section in sections:
        header = re.match(r"diff --git a/(\S+) b/", section)
        if header and not readable_by_policy(context, header.group(1)):
            kept.append(f"[diff of {header.group(1)} withheld: the policy denies reading it]\n")
        else:
            kept.append(section)
    return "".join(kept)


def _log(repo: Repo, revision: str, limit: int, paths: list[str]) -> str:
    start = commit_of(repo, revision).id
    walker = repo.get_walker(
        include=[start], max_entries=limit, paths=[p.encode() for p in paths] or None
    )
    lines = [_oneline(entry.commit) for entry in walker]
    return "\n".join(lines) or "no commits"


def _oneline(commit: Commit) -> str:
    when = short_date(commit.commit_time)
    author = commit.author.decode("utf-8", "replace")
    subject = summary(commit.message.decode("utf-8", "replace"))
    return f"{commit.id.decode()[:12]} {when} {author}: {subject}"


def _branches(repo: Repo) -> str:
    current = current_branch(repo)
    local = [b.decode("utf-8", "replace") for b in porcelain.branch_list(repo)]
    lines = [("* " if name == current else "  ") + name for name in sorted(local)]
    remote = sorted(
        ref.decode("utf-8", "replace").removeprefix("refs/remotes/")
        for ref in repo.refs.allkeys()
        if ref.startswith(b"refs/remotes/")
    )
    lines += [f"  remotes/{name}" for name in remote]
    return "\n".join(lines) or "no branches yet"


# ── the tools ────────────────────────────────────────────────────────────────


class StatusTool(GitTool):
    """`lynkr_git_status`."""

    def __init__(self) -> None:
        super().__init__(
            "status",
            "Show the current branch and the staged, unstaged and untracked files.",
            object_schema({}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        return show_status


class DiffTool(GitTool):
    """`lynkr_git_diff`."""

    def __init__(self) -> None:
        super().__init__(
            "diff",
            "Show a unified diff: unstaged changes (working tree vs index) by default, or staged "
            "changes (index vs HEAD) with staged: true; `paths` limits it to some files.",
            object_schema({"staged": {"type": "boolean"}, "paths": PATHS}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        paths = repo_paths(context, arguments.get("paths", []))
        staged = bool(arguments.get("staged"))
        return lambda repo: _without_unreadable(_diff(repo, staged, paths), context)


class LogTool(GitTool):
    """`lynkr_git_log`."""

    def __init__(self) -> None:
        super().__init__(
            "log",
            "List commits, newest first: sha, date, author, subject.",
            object_schema(
                {
                    "revision": {"type": "string", "minLength": 1, "description": REF_DESCRIPTION},
                    "max_count": {"type": "integer", "minimum": 1, "maximum": 500},
                    "paths": PATHS,
                }
            ),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        paths = repo_paths(context, arguments.get("paths", []))
        revision = arguments.get("revision", "HEAD")
        limit = int(arguments.get("max_count", 20))
        return lambda repo: _log(repo, revision, limit, paths)


class BranchesTool(GitTool):
    """`lynkr_git_branches`."""

    def __init__(self) -> None:
        super().__init__(
            "branches",
            "List local branches (the current one marked *) and remote-tracking branches.",
            object_schema({}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        return _branches
