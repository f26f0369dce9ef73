"""Tool calls by canonical name: file paths, git rules and actions, aliases, budgets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lynkr.policy import (
    Policy,
    ToolContext,
    Workspace,
    canonical_name,
    evaluate_tool_call,
)

ROOT_FILE = "src/app.py"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Bash", "shell"),
        ("bash", "shell"),
        ("PowerShell", "shell"),
        ("lynkr_shell", "shell"),
        ("Read", "file.read"),
        ("READ", "file.read"),
        ("Write", "file.write"),
        ("Edit", "file.edit"),
        ("MultiEdit", "file.edit"),
        ("NotebookEdit", "file.edit"),
        ("Glob", "file.list"),
        ("LS", "file.list"),
        ("Grep", "file.search"),
        ("WebFetch", "web.fetch"),
        ("lynkr_git_status", "git.status"),
        ("lynkr_git_push", "git.push"),
        ("lynkr_file_write", "file.write"),
        ("lynkr_fs_read", "file.read"),
        ("lynkr_tests_run", "tests.run"),
        ("lynkr_memory_search", "memory.search"),
        ("mcp__github__create_issue", "mcp.github.create_issue"),
        ("MCP__Files__Write", "mcp.files.write"),
        ("SomethingElse", "somethingelse"),
    ],
)
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


# paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "path", "rule"),
    [
        ("Read", "/etc/passwd", "files.workspace_only"),  # absolute, outside
        ("Read", "../root-evil/secret", "files.workspace_only"),  # `..`
        ("Read", "escape/secret", "files.workspace_only"),  # symlink to the sibling
        ("Read", "etc/hostname", "files.workspace_only"),  # symlink to /etc
        ("Read", "~/.ssh/id_rsa", "files.workspace_only"),  # `~`
        ("Write", "src/../../root-evil/x", "files.workspace_only"),
        ("Write", ".env", "files.deny"),
        ("Edit", "src/.env", "files.deny"),
        ("Write", ".git/hooks/pre-commit", "files.deny_write"),
        ("Read", ".git/config", None),
        ("Read", ROOT_FILE, None),
        ("Read", "inner/app.py", None),  # a symlink that stays inside
        ("Write", "new/file.txt", None),
        ("MultiEdit", ROOT_FILE, None),
    ],
)
def test_paths(
    policies: dict[str, Policy], context: ToolContext, tool: str, path: str, rule: str | None
) -> None:
    decision = evaluate_tool_call(policies["default"], tool, {"file_path": path}, context)
    assert (decision.allowed, None if decision.allowed else decision.rule) == (rule is None, rule)


def test_sibling_prefix_is_not_inside(policies: dict[str, Policy], workspace: Workspace) -> None:
    evil = workspace.root + "-evil/secret"  # "/…/root-evil" starts with "/…/root"
    assert evil.startswith(workspace.root)
    context = ToolContext(workspace=workspace)
    decision = evaluate_tool_call(policies["default"], "Read", {"file_path": evil}, context)
    assert decision.rule == "files.workspace_only"


def test_absolute_path_inside_is_fine(policies: dict[str, Policy], context: ToolContext) -> None:
    assert context.workspace is not None
    path = os.path.join(context.workspace.root, ROOT_FILE)
    assert evaluate_tool_call(policies["strict"], "Read", {"file_path": path}, context).allowed


def test_a_dangling_symlink_is_followed(tmp_path: Path, policies: dict[str, Policy]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path / "outside" / "new.txt", root / "link")
    context = ToolContext(workspace=Workspace(str(root)))
    decision = evaluate_tool_call(policies["default"], "Write", {"file_path": "link"}, context)
    assert decision.rule == "files.workspace_only"


def test_glob_patterns_and_search_paths(policies: dict[str, Policy], context: ToolContext) -> None:
    policy = policies["default"]
    assert not evaluate_tool_call(policy, "Glob", {"pattern": "../**/*.py"}, context).allowed
    assert not evaluate_tool_call(policy, "Grep", {"pattern": "x", "path": "/etc"}, context).allowed
    assert evaluate_tool_call(policy, "Glob", {"pattern": "src/**/*.py"}, context).allowed


def test_read_only_refuses_every_write(policies: dict[str, Policy], context: ToolContext) -> None:
    policy = policies["read-only"]
    for tool in ("Write", "Edit", "NotebookEdit", "lynkr_file_write", "write_file"):
        decision = evaluate_tool_call(policy, tool, {"file_path": "x.txt"}, context)
        assert not decision.allowed, tool
    assert evaluate_tool_call(policy, "Read", {"file_path": ROOT_FILE}, context).allowed


def test_read_outside_lets_reads_out(workspace: Workspace) -> None:
    policy = Policy.from_data({"files": {"read_outside": ["/etc/**"]}})
    context = ToolContext(workspace=workspace)
    assert evaluate_tool_call(policy, "Read", {"file_path": "/etc/hostname"}, context).allowed
    assert not evaluate_tool_call(policy, "Write", {"file_path": "/etc/x"}, context).allowed


def test_without_a_workspace_system_paths_and_globs_still_apply(
    policies: dict[str, Policy],
) -> None:
    policy = policies["default"]
    assert not evaluate_tool_call(policy, "Write", {"file_path": "/etc/passwd"}).allowed
    assert not evaluate_tool_call(policy, "Read", {"file_path": "/app/.env"}).allowed
    assert evaluate_tool_call(policy, "Write", {"file_path": "/home/me/x.py"}).allowed
    assert not evaluate_tool_call(policy, "Bash", {"command": "echo x > /dev/sda"}).allowed


def test_shell_cwd_must_be_inside(policies: dict[str, Policy], context: ToolContext) -> None:
    decision = evaluate_tool_call(
        policies["default"], "Bash", {"command": "ls", "cwd": "/"}, context
    )
    assert decision.rule == "files.workspace_only"


# git ---------------------------------------------------------------------------------------

GIT = Policy.from_data(
    {
        "git": {
            "allow_push": True,
            "allow_pull": False,
            "require_tests": True,
            "test_command": "pytest -q",
            "commit_message_regex": "^(feat|fix): .+",
        }
    }
)


@pytest.mark.parametrize(
    ("line", "tests_passed", "rule"),
    [
        ('git commit -m "feat: x"', True, None),
        ('git commit -m "feat: x"', None, "git.require_tests"),
        ('git commit -m "feat: x"', False, "git.require_tests"),
        ("git commit -m 'wip'", True, "git.commit_message_regex"),
        ("git commit -am 'fix: y'", True, None),
        ("git commit --message='fix: y'", True, None),
        ("git commit -F msg.txt", True, "git.commit_message_regex"),
        ("git commit", True, "git.commit_message_regex"),
        ("git commit --amend --no-edit", True, None),
        ("git push origin main", None, None),
        ("git push --force origin main", None, "git.allow_force_push"),
        ("git push --forc origin main", None, "git.allow_force_push"),
        ("git push -fu origin main", None, "git.allow_force_push"),
        ("git push --force-with-lease", None, "git.allow_force_push"),
        ("git push origin +main", None, "git.allow_force_push"),
        ("git push origin :main", None, "git.allow_force_push"),
        ("git push --mirror", None, "git.allow_force_push"),
        ("git pull", None, "git.allow_pull"),
        ("git fetch origin", None, "git.allow_pull"),
        ("git -C src status", None, None),
        ("git -C / status", None, "files.workspace_only"),
        ("git -c alias.x='!rm -rf ~' x", None, "git.config_override"),
        ("git --exec-path=/tmp status", None, "git.config_override"),
        ("git clone -u 'touch x' repo", None, "git.option_injection"),
    ],
)
def test_git_in_shell_lines(
    workspace: Workspace, line: str, tests_passed: bool | None, rule: str | None
) -> None:
    context = ToolContext(workspace=workspace, tests_passed=tests_passed)
    decision = evaluate_tool_call(GIT, "Bash", {"command": line}, context)
    assert (decision.allowed, None if decision.allowed else decision.rule) == (rule is None, rule)


@pytest.mark.parametrize(
    ("tool", "arguments", "tests_passed", "rule"),
    [
        ("lynkr_git_commit", {"message": "feat: x"}, True, None),
        ("lynkr_git_commit", {"message": "feat: x"}, None, "git.require_tests"),
        ("lynkr_git_commit", {"message": "oops"}, True, "git.commit_message_regex"),
        ("lynkr_git_push", {"remote": "origin"}, None, None),
        ("lynkr_git_push", {"force": True}, None, "git.allow_force_push"),
        ("lynkr_git_pull", {}, None, "git.allow_pull"),
        ("lynkr_git_status", {}, None, None),
    ],
)
def test_git_tools(
    tool: str, arguments: dict[str, object], tests_passed: bool | None, rule: str | None
) -> None:
    decision = evaluate_tool_call(GIT, tool, arguments, ToolContext(tests_passed=tests_passed))
    assert (decision.allowed, None if decision.allowed else decision.rule) == (rule is None, rule)


def test_git_defaults_refuse_push(policies: dict[str, Policy]) -> None:
    decision = evaluate_tool_call(policies["default"], "lynkr_git_push", {})
    assert decision.reason == "git push is not allowed by this policy (set git.allow_push: true)"


def test_read_only_git(policies: dict[str, Policy], context: ToolContext) -> None:
    policy = policies["read-only"]
    assert evaluate_tool_call(policy, "Bash", {"command": "git branch -a"}, context).allowed
    assert not evaluate_tool_call(policy, "Bash", {"command": "git branch new"}, context).allowed
    assert not evaluate_tool_call(policy, "lynkr_git_checkout", {"branch": "x"}, context).allowed


# tool names, budgets ---------------------------------------------------------------------


def test_tool_lists_use_canonical_and_raw_names() -> None:
    policy = Policy.from_data({"tools": {"deny": ["file.write", "mcp.github.*"]}})
    assert not evaluate_tool_call(policy, "Write", {"file_path": "x"}).allowed
    assert not evaluate_tool_call(policy, "write_file", {"file_path": "x"}).allowed
    assert not evaluate_tool_call(policy, "mcp__github__merge", {}).allowed
    assert evaluate_tool_call(policy, "Read", {"file_path": "x"}).allowed
    only = Policy.from_data({"tools": {"allow": ["file.read", "Bash"]}})
    assert evaluate_tool_call(only, "Read", {"file_path": "x"}).allowed
    assert evaluate_tool_call(only, "bash", {"command": "ls"}).allowed
    assert evaluate_tool_call(only, "Edit", {"file_path": "x"}).rule == "tools.allow"


def test_budget_per_turn(policies: dict[str, Policy]) -> None:
    policy = policies["strict"]
    early = evaluate_tool_call(policy, "Read", {"file_path": "x"}, ToolContext(calls_in_turn=24))
    assert early.allowed
    late = evaluate_tool_call(policy, "Read", {"file_path": "x"}, ToolContext(calls_in_turn=25))
    assert late.rule == "tools.max_calls_per_turn"


def test_shell_call_without_a_command_is_refused(policies: dict[str, Policy]) -> None:
    assert evaluate_tool_call(policies["default"], "Bash", {"cmd": 3}).rule == "shell.no_command"
    argv = evaluate_tool_call(policies["default"], "lynkr_shell", {"argv": ["rm", "-rf", "/"]})
    assert argv.rule == "shell.builtin_deny"
