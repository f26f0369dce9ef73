"""The git tools that change the repository: stage, unstage, commit, checkout and stash.

None of them runs hooks (the repository is opened without them) and none
touches a remote. A commit with `git.require_tests` has the policy's
`git.test_command` run first (see `CommitTool.run_required_tests`); the
registry asks for that before the commit runs. Checkout is refused when local
changes would be overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from dulwich import porcelain
from dulwich.objects import Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from lynkr.agent.tools.base import ToolContext, ToolError, object_schema
from lynkr.agent.tools.git.reading import show_status
from lynkr.agent.tools.git.repository import (
    BRANCH,
    PATHS,
    GitTool,
    current_branch,
    repo_paths,
    summary,
    valid_ref,
)

__all__ = ["CheckoutTool", "CommitTool", "StageTool", "StashTool", "UnstageTool"]

# ── the work each tool does, synchronously, on an open repository ───────────


def _stage(repo: Repo, paths: list[str] | None) -> str:
    root = repo.path
    absolute = None if paths is None else [os.path.join(root, p) for p in paths]
    added, ignored = porcelain.add(repo, paths=absolute)
    note = f"; ignored by .gitignore: {', '.join(sorted(ignored))}" if ignored else ""
    return f"staged {len(added)} path(s){note}\n" + show_status(repo)


def _unstage(repo: Repo, paths: list[str]) -> str:
    head_tree = _head_tree(repo)
    index = repo.open_index()
    for path in paths:
        key = path.encode("utf-8")
        if head_tree is not None and _in_tree(repo, head_tree, key):
            porcelain.restore(repo, [key], staged=True, worktree=False)
            index = repo.open_index()
        elif key in index:
            del index[key]
            index.write()
    return show_status(repo)


def _head_tree(repo: Repo) -> bytes | None:
    try:
        head = repo[repo.head()]
    except KeyError:
        return None
    return head.tree if isinstance(head, Commit) else None


def _in_tree(repo: Repo, tree: bytes, path: bytes) -> bool:
    root = repo[tree]
    if not isinstance(root, Tree):
        return False
    try:
        root.lookup_path(repo.object_store.__getitem__, path)
    except KeyError:
        return False
    return True


def _commit(repo: Repo, message: str, author: str | None) -> str:
    staged = porcelain.status(repo, untracked_files="no").staged
    if not any(staged.values()):
        raise ToolError("nothing is staged; stage changes with lynkr_git_stage first")
    identity = author.encode("utf-8") if author else None
    sha = porcelain.commit(
        repo, message=message.encode("utf-8"), author=identity, committer=identity, no_verify=True
    )
    branch = current_branch(repo) or "detached HEAD"
    return f"committed {sha.decode()[:12]} on {branch}: {summary(message)}"


def _checkout(repo: Repo, branch: str, create: bool) -> str:
    valid_ref(branch, "branch")
    exists = Ref(f"refs/heads/{branch}".encode()) in repo.refs
    if create and exists:
        raise ToolError(f"branch {branch!r} already exists; check it out without create")
    if not create and not exists:
        raise ToolError(f"no branch {branch!r}; pass create: true to create it from HEAD")
    if create:
        porcelain.branch_create(repo, branch)
    try:
        porcelain.checkout(repo, target=branch)
    except porcelain.CheckoutError as exc:
        raise ToolError(f"checkout refused: {exc}; commit or stash your changes first") from exc
    return f"on branch {branch}" + (" (new)" if create else "")


def _stash(repo: Repo, action: str) -> str:
    if action == "push":
        porcelain.stash_push(repo)
        return "stashed tracked changes\n" + show_status(repo)
    if action == "pop":
        if not list(porcelain.stash_list(repo)):
            raise ToolError("the stash is empty")
        porcelain.stash_pop(repo)
        return "applied and dropped the latest stash\n" + show_status(repo)
    entries = list(porcelain.stash_list(repo))
    return "\n".join(f"stash@{{{i}}}" for i, _ in entries) or "the stash is empty"


# ── the tools ────────────────────────────────────────────────────────────────


class StageTool(GitTool):
    """`lynkr_git_stage`."""

    def __init__(self) -> None:
        super().__init__(
            "stage",
            "Stage files for the next commit (new, modified or deleted); all: true stages "
            "every change outside .gitignore.",
            object_schema({"paths": {**PATHS, "minItems": 1}, "all": {"type": "boolean"}}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        if arguments.get("all"):
            return lambda repo: _stage(repo, None)
        if not arguments.get("paths"):
            raise ToolError("give `paths` to stage, or all: true")
        paths = repo_paths(context, arguments["paths"])
        return lambda repo: _stage(repo, paths)


class UnstageTool(GitTool):
    """`lynkr_git_unstage`."""

    def __init__(self) -> None:
        super().__init__(
            "unstage",
            "Remove files from the staging area (the working tree is left as it is).",
            object_schema({"paths": {**PATHS, "minItems": 1}}, ("paths",)),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        paths = repo_paths(context, arguments["paths"])
        return lambda repo: _unstage(repo, paths)


class CommitTool(GitTool):
    """`lynkr_git_commit`; runs the policy's test command when the policy requires tests."""

    def __init__(self, *, author: str | None = None, test_timeout: float = 600.0) -> None:
        super().__init__(
            "commit",
            "Commit the staged changes with a message. The policy may require the message to "
            "match a pattern and the tests to pass (lynkr then runs them first).",
            object_schema({"message": {"type": "string", "minLength": 1}}, ("message",)),
        )
        self.author = author
        self.test_timeout = test_timeout

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        author = self.author or _env_author(context.env)
        return lambda repo: _commit(repo, arguments["message"], author)

    async def run_required_tests(self, context: ToolContext) -> tuple[bool, str]:
        """Run the policy's `git.test_command`; (passed, a note for a refusal)."""
        from lynkr.agent.tools.testruns import TestProfile, headline, run_profile

        command = getattr(getattr(context.policy, "git", None), "test_command", None)
        if not command:
            return False, "the policy names no git.test_command to run"
        profile = TestProfile("git.test_command", command, ".", self.test_timeout)
        run = await run_profile(profile, context)
        return run.passed, f"test run {run.id}: {headline(run)}\n{run.tail[-2000:]}"


def _env_author(env: Mapping[str, str]) -> str | None:
    name, email = env.get("GIT_AUTHOR_NAME"), env.get("GIT_AUTHOR_EMAIL")
    return f"{name} <{email}>" if name and email else None


class CheckoutTool(GitTool):
    """`lynkr_git_checkout`."""

    def __init__(self) -> None:
        super().__init__(
            "checkout",
            "Switch to a branch (create: true makes it from HEAD first). Refused when local "
            "changes would be overwritten.",
            object_schema({"branch": BRANCH, "create": {"type": "boolean"}}, ("branch",)),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        branch, create = arguments["branch"], bool(arguments.get("create"))
        return lambda repo: _checkout(repo, branch, create)


class StashTool(GitTool):
    """`lynkr_git_stash`."""

    def __init__(self) -> None:
        super().__init__(
            "stash",
            "Stash changes to tracked files (push), re-apply the latest stash (pop), or list.",
            object_schema({"action": {"enum": ["push", "pop", "list"]}}, ("action",)),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        action = arguments["action"]
        return lambda repo: _stash(repo, action)
