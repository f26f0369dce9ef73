"""The git tools that talk to a remote: push and pull.

Remotes must be names configured in the repository (not URLs), so the model
cannot send the repository anywhere new; branch names are checked like every
ref. Pull is fast-forward only. Push and pull run only when the policy allows
them (`git.allow_push`, `git.allow_pull`), a rule the registry applies before
the tool runs.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

from dulwich import porcelain
from dulwich.repo import Repo

from lynkr.agent.tools.base import ToolContext, ToolError, object_schema
from lynkr.agent.tools.git.repository import BRANCH, REMOTE, GitTool, current_branch, valid_ref

__all__ = ["PullTool", "PushTool"]


def _remote_url(repo: Repo, remote: str) -> str:
    valid_ref(remote, "remote")
    try:
        url = repo.get_config().get((b"remote", remote.encode("utf-8")), b"url")
    except KeyError as exc:
        raise ToolError(
            f"no remote named {remote!r} in the repository's configuration; "
            "lynkr pushes and pulls only to configured remotes"
        ) from exc
    return url.decode("utf-8", "replace")


def _push(repo: Repo, remote: str, branch: str | None, force: bool, env: Mapping[str, str]) -> str:
    _remote_url(repo, remote)
    name = valid_ref(branch, "branch") if branch else current_branch(repo)
    if name is None:
        raise ToolError("HEAD is detached; name the branch to push")
    refspec = f"refs/heads/{name}:refs/heads/{name}".encode()
    err = io.BytesIO()
    try:
        result = porcelain.push(
            repo, remote, refspec, outstream=io.BytesIO(), errstream=err, force=force, env=env
        )
    except porcelain.DivergedBranches as exc:
        raise ToolError("the remote branch has commits you do not have; pull first") from exc
    failed = {k: v for k, v in (result.ref_status or {}).items() if v}
    if failed:
        reasons = ", ".join(f"{k.decode()}: {v}" for k, v in failed.items())
        raise ToolError(f"the remote refused the push: {reasons}")
    return f"pushed {name} to {remote}"


def _pull(repo: Repo, remote: str, branch: str | None, env: Mapping[str, str]) -> str:
    _remote_url(repo, remote)
    name = valid_ref(branch, "branch") if branch else current_branch(repo)
    if name is None:
        raise ToolError("HEAD is detached; name the branch to pull")
    before = repo.head()
    try:
        porcelain.pull(
            repo,
            remote,
            f"refs/heads/{name}".encode(),
            outstream=io.BytesIO(),
            errstream=io.BytesIO(),
            ff_only=True,
            env=env,
        )
    except porcelain.DivergedBranches as exc:
        raise ToolError("the branches have diverged; lynkr only fast-forwards") from exc
    after = repo.head()
    if before == after:
        return f"already up to date with {remote}/{name}"
    return f"fast-forwarded {before.decode()[:12]}..{after.decode()[:12]} from {remote}/{name}"


# ── the tools ────────────────────────────────────────────────────────────────


class PushTool(GitTool):
    """`lynkr_git_push`."""

    def __init__(self) -> None:
        super().__init__(
            "push",
            "Push a branch (default: the current one) to a configured remote (default: origin). "
            "Only when the policy allows pushing; force needs git.allow_force_push.",
            object_schema({"remote": REMOTE, "branch": BRANCH, "force": {"type": "boolean"}}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        remote, branch = arguments.get("remote", "origin"), arguments.get("branch")
        force, env = bool(arguments.get("force")), dict(context.env)
        return lambda repo: _push(repo, remote, branch, force, env)


class PullTool(GitTool):
    """`lynkr_git_pull`."""

    def __init__(self) -> None:
        super().__init__(
            "pull",
            "Fetch a branch (default: the current one) from a configured remote (default: "
            "origin) and fast-forward to it; diverged branches are refused, never merged.",
            object_schema({"remote": REMOTE, "branch": BRANCH}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        remote, branch, env = (
            arguments.get("remote", "origin"),
            arguments.get("branch"),
            dict(context.env),
        )
        return lambda repo: _pull(repo, remote, branch, env)
