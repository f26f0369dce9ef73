"""The git family, through dulwich: no `git` binary, no shell, no hooks.

The repository is the workspace root (`<root>/.git`); a workspace inside a
larger repository is not searched upwards, so a tool never touches a
repository outside the workspace. Every repository is opened with its hooks
removed, so no tool call runs `.git/hooks/*` (and the files tools never write
under `.git`, so the model cannot plant one).

Arguments the model gives are data, never options: refs and branch names are
checked with git's own ref-format rules and may not start with `-`; remotes
must be names configured in the repository (not URLs); paths go through the
workspace confinement. Pull is fast-forward only. Push and pull run only when
the policy allows them (`git.allow_push`, `git.allow_pull`), a rule the
registry applies before the tool runs; a commit with `git.require_tests` has
the policy's `git.test_command` run first (see `CommitTool.run_required_tests`).

Release notes: lynkr gathers the facts between two refs (commits, authors,
files changed) as JSON; the model writes the prose.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from dulwich import porcelain
from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository
from dulwich.objects import Commit, Tag, Tree
from dulwich.objectspec import parse_object
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from lynkr.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    object_schema,
    resolve_path,
)
from lynkr.agent.tools.files import readable_by_policy

__all__ = ["CommitTool", "git_tools", "valid_ref"]

_T = TypeVar("_T")
MAX_DIFF_BYTES = 200_000
MAX_LISTED = 200
_REF_DESCRIPTION = "A branch, tag or commit (HEAD, main, v1.2, a sha, HEAD~3)."


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


def _commit_of(repo: Repo, revision: str) -> Commit:
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


def _repo_paths(context: ToolContext, paths: list[str]) -> list[str]:
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


def _branch(repo: Repo) -> str | None:
    try:
        return porcelain.active_branch(repo).decode("utf-8", "replace")
    except (KeyError, IndexError, ValueError):
        return None  # detached HEAD or no commit yet


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


def _status(repo: Repo) -> str:
    status = porcelain.status(repo, untracked_files="normal")
    lines = [f"branch: {_branch(repo) or '(detached HEAD or no commits yet)'}"]
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


def _stage(repo: Repo, paths: list[str] | None) -> str:
    root = repo.path
    absolute = None if paths is None else [os.path.join(root, p) for p in paths]
    added, ignored = porcelain.add(repo, paths=absolute)
    note = f"; ignored by .gitignore: {', '.join(sorted(ignored))}" if ignored else ""
    return f"staged {len(added)} path(s){note}\n" + _status(repo)


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
    return _status(repo)


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
    return (
        f"committed {sha.decode()[:12]} on {_branch(repo) or 'detached HEAD'}: {_summary(message)}"
    )


def _summary(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""


def _log(repo: Repo, revision: str, limit: int, paths: list[str]) -> str:
    start = _commit_of(repo, revision).id
    walker = repo.get_walker(
        include=[start], max_entries=limit, paths=[p.encode() for p in paths] or None
    )
    lines = [_oneline(entry.commit) for entry in walker]
    return "\n".join(lines) or "no commits"


def _oneline(commit: Commit) -> str:
    when = _date(commit.commit_time)
    author = commit.author.decode("utf-8", "replace")
    subject = _summary(commit.message.decode("utf-8", "replace"))
    return f"{commit.id.decode()[:12]} {when} {author}: {subject}"


def _date(timestamp: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


def _branches(repo: Repo) -> str:
    current = _branch(repo)
    local = [b.decode("utf-8", "replace") for b in porcelain.branch_list(repo)]
    lines = [("* " if name == current else "  ") + name for name in sorted(local)]
    remote = sorted(
        ref.decode("utf-8", "replace").removeprefix("refs/remotes/")
        for ref in repo.refs.allkeys()
        if ref.startswith(b"refs/remotes/")
    )
    lines += [f"  remotes/{name}" for name in remote]
    return "\n".join(lines) or "no branches yet"


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
        return "stashed tracked changes\n" + _status(repo)
    if action == "pop":
        if not list(porcelain.stash_list(repo)):
            raise ToolError("the stash is empty")
        porcelain.stash_pop(repo)
        return "applied and dropped the latest stash\n" + _status(repo)
    entries = list(porcelain.stash_list(repo))
    return "\n".join(f"stash@{{{i}}}" for i, _ in entries) or "the stash is empty"


def _push(repo: Repo, remote: str, branch: str | None, force: bool, env: Mapping[str, str]) -> str:
    _remote_url(repo, remote)
    name = valid_ref(branch, "branch") if branch else _branch(repo)
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
    name = valid_ref(branch, "branch") if branch else _branch(repo)
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


def _release_facts(repo: Repo, since: str, until: str, limit: int) -> str:
    start, end = _commit_of(repo, since), _commit_of(repo, until)
    commits = [e.commit for e in repo.get_walker(include=[end.id], exclude=[start.id])]
    authors = Counter(c.author.decode("utf-8", "replace") for c in commits)
    changes = tree_changes(repo.object_store, start.tree, end.tree)
    files: dict[str, str] = {}
    for change in changes:
        old = change.old.path if change.old else None
        new = change.new.path if change.new else None
        path = (new or old or b"").decode("utf-8", "replace")
        files[path] = change.type
    facts = {
        "from": {"ref": since, "sha": start.id.decode()},
        "to": {"ref": until, "sha": end.id.decode()},
        "commit_count": len(commits),
        "commits": [_commit_facts(c) for c in commits[:limit]],
        "authors": [{"author": a, "commits": n} for a, n in authors.most_common()],
        "files_changed": [{"path": p, "change": t} for p, t in sorted(files.items())],
    }
    return json.dumps(facts, indent=1, ensure_ascii=False)


def _commit_facts(commit: Commit) -> dict[str, Any]:
    message = commit.message.decode("utf-8", "replace").strip()
    subject, _, body = message.partition("\n")
    return {
        "sha": commit.id.decode()[:12],
        "date": _date(commit.commit_time),
        "author": commit.author.decode("utf-8", "replace"),
        "subject": subject,
        "body": body.strip()[:1000],
        "merge": len(commit.parents) > 1,
    }


# ── the tools ────────────────────────────────────────────────────────────────

_PATHS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "description": "Paths relative to the workspace root.",
}
_BRANCH = {"type": "string", "minLength": 1, "description": "A branch name."}
_REMOTE = {"type": "string", "minLength": 1, "description": "A configured remote (origin)."}


class _GitTool:
    """A git tool: its spec and the synchronous work it does on the repository."""

    spec: ToolSpec

    def __init__(self, action: str, description: str, schema: dict[str, Any]) -> None:
        self.spec = ToolSpec(f"lynkr_git_{action}", description, schema, "git", f"git.{action}")

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        work = self.work(arguments, context)
        return ToolResult(await _with_repo(context, work))

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        raise NotImplementedError


class _Status(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "status",
            "Show the current branch and the staged, unstaged and untracked files.",
            object_schema({}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        return _status


class _Diff(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "diff",
            "Show a unified diff: unstaged changes (working tree vs index) by default, or staged "
            "changes (index vs HEAD) with staged: true; `paths` limits it to some files.",
            object_schema({"staged": {"type": "boolean"}, "paths": _PATHS}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        paths = _repo_paths(context, arguments.get("paths", []))
        staged = bool(arguments.get("staged"))
        return lambda repo: _without_unreadable(_diff(repo, staged, paths), context)


class _Stage(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "stage",
            "Stage files for the next commit (new, modified or deleted); all: true stages "
            "every change outside .gitignore.",
            object_schema({"paths": {**_PATHS, "minItems": 1}, "all": {"type": "boolean"}}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        if arguments.get("all"):
            return lambda repo: _stage(repo, None)
        if not arguments.get("paths"):
            raise ToolError("give `paths` to stage, or all: true")
        paths = _repo_paths(context, arguments["paths"])
        return lambda repo: _stage(repo, paths)


class _Unstage(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "unstage",
            "Remove files from the staging area (the working tree is left as it is).",
            object_schema({"paths": {**_PATHS, "minItems": 1}}, ("paths",)),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        paths = _repo_paths(context, arguments["paths"])
        return lambda repo: _unstage(repo, paths)


class CommitTool(_GitTool):
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


class _Log(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "log",
            "List commits, newest first: sha, date, author, subject.",
            object_schema(
                {
                    "revision": {"type": "string", "minLength": 1, "description": _REF_DESCRIPTION},
                    "max_count": {"type": "integer", "minimum": 1, "maximum": 500},
                    "paths": _PATHS,
                }
            ),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        paths = _repo_paths(context, arguments.get("paths", []))
        revision = arguments.get("revision", "HEAD")
        limit = int(arguments.get("max_count", 20))
        return lambda repo: _log(repo, revision, limit, paths)


class _Branches(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "branches",
            "List local branches (the current one marked *) and remote-tracking branches.",
            object_schema({}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        return _branches


class _Checkout(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "checkout",
            "Switch to a branch (create: true makes it from HEAD first). Refused when local "
            "changes would be overwritten.",
            object_schema({"branch": _BRANCH, "create": {"type": "boolean"}}, ("branch",)),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        branch, create = arguments["branch"], bool(arguments.get("create"))
        return lambda repo: _checkout(repo, branch, create)


class _Stash(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "stash",
            "Stash changes to tracked files (push), re-apply the latest stash (pop), or list.",
            object_schema({"action": {"enum": ["push", "pop", "list"]}}, ("action",)),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        action = arguments["action"]
        return lambda repo: _stash(repo, action)


class _Push(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "push",
            "Push a branch (default: the current one) to a configured remote (default: origin). "
            "Only when the policy allows pushing; force needs git.allow_force_push.",
            object_schema({"remote": _REMOTE, "branch": _BRANCH, "force": {"type": "boolean"}}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        remote, branch = arguments.get("remote", "origin"), arguments.get("branch")
        force, env = bool(arguments.get("force")), dict(context.env)
        return lambda repo: _push(repo, remote, branch, force, env)


class _Pull(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "pull",
            "Fetch a branch (default: the current one) from a configured remote (default: "
            "origin) and fast-forward to it; diverged branches are refused, never merged.",
            object_schema({"remote": _REMOTE, "branch": _BRANCH}),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        remote, branch, env = (
            arguments.get("remote", "origin"),
            arguments.get("branch"),
            dict(context.env),
        )
        return lambda repo: _pull(repo, remote, branch, env)


class _ReleaseNotes(_GitTool):
    def __init__(self) -> None:
        super().__init__(
            "release_notes",
            "Gather the facts for release notes or a changelog between two revisions: the "
            "commits (sha, date, author, subject, body), authors with commit counts and the "
            "files changed, as JSON. Write the prose from these facts.",
            object_schema(
                {
                    "since": {"type": "string", "minLength": 1, "description": _REF_DESCRIPTION},
                    "until": {"type": "string", "minLength": 1, "description": _REF_DESCRIPTION},
                    "max_commits": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                ("since",),
            ),
        )

    def work(self, arguments: dict[str, Any], context: ToolContext) -> Callable[[Repo], str]:
        since, until = arguments["since"], arguments.get("until", "HEAD")
        limit = int(arguments.get("max_commits", 200))
        return lambda repo: _release_facts(repo, since, until, limit)


def git_tools(*, author: str | None = None) -> list[Any]:
    """The git family, in the order the model sees them."""
    return [
        _Status(),
        _Diff(),
        _Stage(),
        _Unstage(),
        CommitTool(author=author),
        _Log(),
        _Branches(),
        _Checkout(),
        _Stash(),
        _Push(),
        _Pull(),
        _ReleaseNotes(),
    ]
