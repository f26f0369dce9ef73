"""The git family on real dulwich repositories: a workspace repo and a local bare remote."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from dulwich import porcelain
from dulwich.repo import Repo

from lynkr.policy import Policy
from tests.agent.tools.conftest import AUTHOR, ToolCaller

pytestmark = pytest.mark.anyio

PUSH = Policy.from_data({"git": {"allow_push": True}})


def _text(result: Any) -> str:
    assert isinstance(result.content, str)
    return result.content


def _head_message(path: Path) -> str:
    with closing(Repo(str(path))) as repo:
        return repo[repo.head()].message.decode()  # type: ignore[attr-defined,no-any-return]


async def _commit_file(tools: ToolCaller, name: str, text: str, message: str) -> None:
    assert not (await tools("lynkr_file_write", {"file_path": name, "content": text})).is_error
    assert not (await tools("lynkr_git_stage", {"paths": [name]})).is_error
    result = await tools("lynkr_git_commit", {"message": message})
    assert not result.is_error, _text(result)


async def test_status_stage_unstage(tools: ToolCaller, git_repo: Path) -> None:
    assert "nothing to commit, clean" in _text(await tools("lynkr_git_status", {}))
    (git_repo / "README.md").write_text("changed\n")
    (git_repo / "new.txt").write_text("new\n")
    status = _text(await tools("lynkr_git_status", {}))
    assert "branch: master" in status
    assert "not staged (modified or deleted):\n  README.md" in status
    assert "untracked:\n  new.txt" in status
    staged = _text(await tools("lynkr_git_stage", {"paths": ["new.txt", "README.md"]}))
    assert "staged (add):\n  new.txt" in staged and "staged (modify):\n  README.md" in staged
    after = _text(await tools("lynkr_git_unstage", {"paths": ["new.txt", "README.md"]}))
    assert "staged" not in after.split("not staged")[0]
    assert "untracked:\n  new.txt" in after


async def test_stage_a_deletion_and_all(tools: ToolCaller, git_repo: Path) -> None:
    (git_repo / "README.md").unlink()
    assert "staged (delete):\n  README.md" in _text(
        await tools("lynkr_git_stage", {"paths": ["README.md"]})
    )
    (git_repo / "a.txt").write_text("a")
    assert "staged (add):\n  a.txt" in _text(await tools("lynkr_git_stage", {"all": True}))
    assert (await tools("lynkr_git_stage", {})).is_error


async def test_diff_unstaged_staged_and_by_path(tools: ToolCaller, git_repo: Path) -> None:
    (git_repo / "README.md").write_text("hello\nworld\n")
    (git_repo / "other.txt").write_text("x\n")
    await tools("lynkr_git_stage", {"paths": ["other.txt"]})
    unstaged = _text(await tools("lynkr_git_diff", {}))
    assert "+world" in unstaged and "other.txt" not in unstaged
    staged = _text(await tools("lynkr_git_diff", {"staged": True}))
    assert "new file mode" in staged and "+x" in staged and "README" not in staged
    assert _text(await tools("lynkr_git_diff", {"paths": ["other.txt"]})) == "no differences"


async def test_commit_and_log(tools: ToolCaller, git_repo: Path) -> None:
    nothing = await tools("lynkr_git_commit", {"message": "empty"})
    assert nothing.is_error and "nothing is staged" in _text(nothing)
    await _commit_file(tools, "a.py", "x = 1\n", "feat: add a\n\nbody text")
    log = _text(await tools("lynkr_git_log", {}))
    first, second = log.splitlines()
    assert first.endswith(f"{AUTHOR}: feat: add a") and second.endswith("initial")
    assert len(_text(await tools("lynkr_git_log", {"max_count": 1})).splitlines()) == 1
    assert "initial" in _text(await tools("lynkr_git_log", {"revision": "HEAD~1"}))
    assert "feat: add a" not in _text(await tools("lynkr_git_log", {"paths": ["README.md"]}))
    unknown = await tools("lynkr_git_log", {"revision": "nope"})
    assert unknown.is_error and "unknown revision 'nope'" in _text(unknown)


async def test_commit_runs_no_hooks(tools: ToolCaller, git_repo: Path) -> None:
    hooks = git_repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in ("pre-commit", "commit-msg", "post-commit"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {git_repo.parent}/hook-ran\nexit 1\n")
        (hooks / hook).chmod(0o755)
    await _commit_file(tools, "a.txt", "a", "no hooks")
    assert not (git_repo.parent / "hook-ran").exists()


async def test_branches_checkout_and_stash(tools: ToolCaller, git_repo: Path) -> None:
    assert _text(await tools("lynkr_git_branches", {})) == "* master"
    assert "(new)" in _text(
        await tools("lynkr_git_checkout", {"branch": "feature/x", "create": True})
    )
    await _commit_file(tools, "f.txt", "feature", "feature work")
    assert "* feature/x" in _text(await tools("lynkr_git_branches", {}))
    assert not (await tools("lynkr_git_checkout", {"branch": "master"})).is_error
    assert not (git_repo / "f.txt").exists()
    missing = await tools("lynkr_git_checkout", {"branch": "nope"})
    assert missing.is_error and "create: true" in _text(missing)
    (git_repo / "README.md").write_text("work in progress\n")
    assert "nothing to commit, clean" in _text(await tools("lynkr_git_stash", {"action": "push"}))
    assert (git_repo / "README.md").read_text() == "hello\n"
    assert "stash@{0}" in _text(await tools("lynkr_git_stash", {"action": "list"}))
    assert "README.md" in _text(await tools("lynkr_git_stash", {"action": "pop"}))
    assert (git_repo / "README.md").read_text() == "work in progress\n"
    assert (await tools("lynkr_git_stash", {"action": "pop"})).is_error


async def test_push_and_pull_with_a_local_bare_remote(
    tools: ToolCaller, git_repo: Path, tmp_path: Path
) -> None:
    await _commit_file(tools, "a.txt", "a", "add a")
    result = await tools("lynkr_git_push", {}, PUSH)
    assert not result.is_error and _text(result) == "pushed master to origin"
    remote = tmp_path / "remote.git"
    with closing(Repo(str(remote))) as bare, closing(Repo(str(git_repo))) as repo:
        assert bare.refs[b"refs/heads/master"] == repo.head()
    other = tmp_path / "other"
    with closing(porcelain.clone(str(remote), str(other), errstream=_Sink())) as clone:
        (other / "b.txt").write_text("b")
        porcelain.add(clone, paths=[str(other / "b.txt")])
        porcelain.commit(clone, message=b"add b", author=AUTHOR.encode(), no_verify=True)
        porcelain.push(clone, "origin", b"refs/heads/master", errstream=_Sink(), outstream=_Sink())
    pulled = await tools("lynkr_git_pull", {}, PUSH)
    assert "fast-forwarded" in _text(pulled) and (git_repo / "b.txt").read_text() == "b"
    assert "already up to date" in _text(await tools("lynkr_git_pull", {"remote": "origin"}, PUSH))


async def test_push_and_pull_need_the_policy(tools: ToolCaller, git_repo: Path) -> None:
    refused = await tools("lynkr_git_push", {}, Policy())
    assert refused.is_error and "refused by policy rule git.allow_push" in _text(refused)
    force = await tools("lynkr_git_push", {"force": True}, PUSH)
    assert "policy rule git.allow_force_push" in _text(force)
    no_pull = Policy.from_data({"git": {"allow_pull": False}})
    assert "policy rule git.allow_pull" in _text(await tools("lynkr_git_pull", {}, no_pull))


async def test_push_only_to_configured_remotes(
    tools: ToolCaller, git_repo: Path, tmp_path: Path
) -> None:
    for remote in ("elsewhere", str(tmp_path / "remote.git"), "file:///tmp/x"):
        result = await tools("lynkr_git_push", {"remote": remote}, PUSH)
        assert result.is_error, remote


async def test_commit_message_regex(tools: ToolCaller, git_repo: Path) -> None:
    policy = Policy.from_data({"git": {"commit_message_regex": r"^(feat|fix): "}})
    (git_repo / "a.txt").write_text("a")
    await tools("lynkr_git_stage", {"paths": ["a.txt"]})
    bad = await tools("lynkr_git_commit", {"message": "stuff"}, policy)
    assert bad.is_error and "policy rule git.commit_message_regex" in _text(bad)
    assert not (await tools("lynkr_git_commit", {"message": "fix: stuff"}, policy)).is_error


def _require_tests(exit_code: int) -> Policy:
    command = f"{sys.executable} -c \"import sys; print('tests ran'); sys.exit({exit_code})\""
    return Policy.from_data({"git": {"require_tests": True, "test_command": command}})


async def test_require_tests_runs_them_and_blocks_a_failing_commit(
    tools: ToolCaller, git_repo: Path
) -> None:
    (git_repo / "a.txt").write_text("a")
    await tools("lynkr_git_stage", {"paths": ["a.txt"]})
    failed = await tools("lynkr_git_commit", {"message": "try"}, _require_tests(1))
    assert failed.is_error and "policy rule git.require_tests" in _text(failed)
    assert "tests ran" in _text(failed) and "failed (exit code 1)" in _text(failed)
    assert _head_message(git_repo) == "initial"
    passed = await tools("lynkr_git_commit", {"message": "try again"}, _require_tests(0))
    assert not passed.is_error, _text(passed)
    assert _head_message(git_repo) == "try again"
    summary = _text(await tools("lynkr_tests_summary", {"profile": "git.test_command"}))
    assert "git.test_command: 1/2 passed" in summary


async def test_read_only_policy_allows_reads_only(tools: ToolCaller, git_repo: Path) -> None:
    policy = Policy.from_data({"files": {"read_only": True}})
    assert not (await tools("lynkr_git_status", {}, policy)).is_error
    assert not (await tools("lynkr_git_log", {}, policy)).is_error
    refused = await tools("lynkr_git_stage", {"all": True}, policy)
    assert "policy rule files.read_only" in _text(refused)


async def test_release_notes_facts(tools: ToolCaller, git_repo: Path) -> None:
    with closing(porcelain.open_repo(str(git_repo))) as repo:
        porcelain.tag_create(repo, "v1.0")
    await _commit_file(tools, "a.txt", "a", "feat: add a\n\nWhy a matters.")
    await _commit_file(tools, "README.md", "hello again\n", "docs: readme")
    facts = json.loads(_text(await tools("lynkr_git_release_notes", {"since": "v1.0"})))
    assert facts["commit_count"] == 2
    assert [c["subject"] for c in facts["commits"]] == ["docs: readme", "feat: add a"]
    assert facts["commits"][1]["body"] == "Why a matters."
    assert facts["authors"] == [{"author": AUTHOR, "commits": 2}]
    assert facts["files_changed"] == [
        {"path": "README.md", "change": "modify"},
        {"path": "a.txt", "change": "add"},
    ]
    assert (
        json.loads(_text(await tools("lynkr_git_release_notes", {"since": "HEAD~1"})))[
            "commit_count"
        ]
        == 1
    )


async def test_not_a_repository(tools: ToolCaller, workspace: Path) -> None:
    result = await tools("lynkr_git_status", {})
    assert result.is_error and "not a git repository" in _text(result)


class _Sink:
    """A byte stream that discards what dulwich prints."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass
