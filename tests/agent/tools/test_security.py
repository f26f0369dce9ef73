"""Escapes and injections, tried through every tool that takes a path or a string.

Each escape is tried twice: with no policy (the tools' own confinement must
hold) and with the default policy (which refuses first, naming its rule).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lynkr.agent.tools import ToolContext, scrubbed_environment
from lynkr.policy import Policy
from tests.agent.tools.conftest import CANARY_KEY, OUTSIDE_TEXT, ToolCaller

pytestmark = pytest.mark.anyio

DEFAULT_POLICY = Path("policies/default.yaml").resolve()


def _text(result: Any) -> str:
    return result.content if isinstance(result.content, str) else repr(result.content)


@pytest.fixture
def traps(workspace: Path) -> dict[str, str]:
    """Paths that look inside but are not, by name → path string the model would send."""
    outside = workspace.parent / "outside.txt"
    (workspace / "link-out").symlink_to(outside)
    (workspace / "dir-out").symlink_to(workspace.parent)
    (workspace / "sub").mkdir()
    return {
        "traversal": "../outside.txt",
        "deep traversal": "sub/../../outside.txt",
        "absolute": str(outside),
        "symlink to a file outside": "link-out",
        "symlink to a directory outside": "dir-out/outside.txt",
        "sibling prefix (relative)": "../ws-evil/x.txt",
        "sibling prefix (absolute)": str(workspace) + "-evil/x.txt",
        "home": "~/outside.txt",
        "system file": "/etc/passwd",
    }


def _calls(path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every files/git tool call that takes `path`."""
    directory = os.path.dirname(path) or path
    return [
        ("lynkr_file_read", {"file_path": path}),
        ("lynkr_file_write", {"file_path": path, "content": "pwned"}),
        ("lynkr_file_edit", {"file_path": path, "old_string": OUTSIDE_TEXT, "new_string": "x"}),
        ("lynkr_file_glob", {"pattern": "*", "path": directory}),
        ("lynkr_file_grep", {"pattern": "OUTSIDE", "path": path}),
        ("lynkr_file_history", {"file_path": path}),
        ("lynkr_shell", {"argv": ["true"], "cwd": directory}),
        ("lynkr_git_diff", {"paths": [path]}),
        ("lynkr_git_stage", {"paths": [path]}),
    ]


@pytest.mark.parametrize("with_policy", [False, True], ids=["no policy", "default policy"])
async def test_no_path_escapes_the_workspace(
    tools: ToolCaller, workspace: Path, traps: dict[str, str], with_policy: bool
) -> None:
    policy = Policy() if with_policy else None
    for trap, path in traps.items():
        for name, arguments in _calls(path):
            result = await tools(name, arguments, policy)
            where = f"{name} via {trap} ({path!r})"
            assert result.is_error, f"{where} was not refused: {_text(result)}"
            assert OUTSIDE_TEXT not in _text(result), where
            assert "root:" not in _text(result), where
            if with_policy:
                assert "policy rule files.workspace_only" in _text(result), where
    assert (workspace.parent / "outside.txt").read_text() == OUTSIDE_TEXT
    assert (workspace.parent / "ws-evil" / "x.txt").read_text() == OUTSIDE_TEXT


async def test_refusals_quote_the_given_path_not_the_server_path(
    tools: ToolCaller, workspace: Path
) -> None:
    result = await tools("lynkr_file_read", {"file_path": "../outside.txt"})
    assert "'../outside.txt' is outside the workspace" in _text(result)
    assert str(workspace.parent) not in _text(result)


async def test_symlinks_inside_the_workspace_are_followed(
    tools: ToolCaller, workspace: Path
) -> None:
    (workspace / "real.txt").write_text("inside")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    assert "inside" in _text(await tools("lynkr_file_read", {"file_path": "alias.txt"}))


async def test_glob_and_grep_do_not_follow_symlinks_out(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "dir-out").symlink_to(workspace.parent)
    (workspace / "link-out").symlink_to(workspace.parent / "outside.txt")
    listing = _text(await tools("lynkr_file_glob", {"pattern": "**"}))
    assert "outside.txt" not in listing and "x.txt" not in listing
    assert "no matches" in _text(await tools("lynkr_file_grep", {"pattern": "OUTSIDE"}))


@pytest.mark.parametrize(
    "path", [".git/config", ".git/hooks/pre-commit", "sub/.git/config", ".git"]
)
async def test_tools_never_write_into_git(tools: ToolCaller, workspace: Path, path: str) -> None:
    (workspace / ".git" / "hooks").mkdir(parents=True)
    result = await tools("lynkr_file_write", {"file_path": path, "content": "[core]\n"})
    assert result.is_error and ".git directory" in _text(result)


# ── injection through every string argument ──────────────────────────────────

NASTY = [
    "a;touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "x\ntouch pwned",
    "-rf",
    "--output=pwned",
]


def _no_pwned(root: Path) -> None:
    assert not list(root.rglob("pwned")), "an argument was executed"


@pytest.mark.parametrize("name", NASTY)
async def test_file_names_are_data(tools: ToolCaller, workspace: Path, name: str) -> None:
    written = await tools("lynkr_file_write", {"file_path": name, "content": "data"})
    assert not written.is_error, _text(written)
    assert (workspace / name).read_text() == "data"
    assert not (await tools("lynkr_file_read", {"file_path": name})).is_error
    edit = {"file_path": name, "old_string": "data", "new_string": name}
    assert not (await tools("lynkr_file_edit", edit)).is_error
    await tools("lynkr_file_glob", {"pattern": name})
    await tools("lynkr_file_grep", {"pattern": name, "glob": name})
    await tools("lynkr_file_history", {"file_path": name})
    await tools("lynkr_shell", {"argv": ["cat", "--", name]})
    _no_pwned(workspace.parent)


@pytest.mark.parametrize("value", NASTY)
async def test_git_arguments_are_data(
    tools: ToolCaller, workspace: Path, git_repo: Path, value: str
) -> None:
    (workspace / "f.txt").write_text("change")
    await tools("lynkr_git_stage", {"paths": [value]})
    await tools("lynkr_git_diff", {"paths": [value]})
    await tools("lynkr_git_log", {"revision": value, "paths": [value]})
    for name, arguments in [
        ("lynkr_git_checkout", {"branch": value}),
        ("lynkr_git_checkout", {"branch": value, "create": True}),
        ("lynkr_git_release_notes", {"since": value}),
        ("lynkr_git_release_notes", {"since": "HEAD", "until": value}),
        ("lynkr_git_push", {"remote": value}),
        ("lynkr_git_pull", {"remote": "origin", "branch": value}),
    ]:
        result = await tools(name, arguments, Policy.from_data({"git": {"allow_push": True}}))
        assert result.is_error, f"{name} {arguments} was accepted"
    await tools("lynkr_git_stage", {"all": True})
    assert not (await tools("lynkr_git_commit", {"message": value})).is_error
    assert value.splitlines()[0] in _text(await tools("lynkr_git_log", {"max_count": 1}))
    _no_pwned(workspace.parent)


async def test_refs_that_look_like_options_are_refused(tools: ToolCaller, git_repo: Path) -> None:
    for branch in ["-b", "--upload-pack=touch pwned", "--orphan"]:
        result = await tools("lynkr_git_checkout", {"branch": branch, "create": True})
        assert result.is_error and "may not be empty or start with '-'" in _text(result)


@pytest.mark.parametrize("profile", ["unit; touch pwned", "$(touch pwned)", "unit\n", "../unit"])
async def test_test_profile_names_are_an_enum(
    tools: ToolCaller, workspace: Path, profile: str
) -> None:
    result = await tools("lynkr_tests_run", {"profile": profile})
    assert result.is_error and "invalid input for lynkr_tests_run: $.profile" in _text(result)
    _no_pwned(workspace.parent)


@pytest.mark.parametrize("value", [*NASTY, "'); DROP TABLE tool_tasks; --"])
async def test_task_fields_are_data(tools: ToolCaller, workspace: Path, value: str) -> None:
    assert not (await tools("lynkr_tasks_create", {"title": value, "description": value})).is_error
    assert value in _text(await tools("lynkr_tasks_list", {}))
    _no_pwned(workspace.parent)


async def test_shell_argv_is_not_a_shell(tools: ToolCaller, workspace: Path) -> None:
    result = await tools("lynkr_shell", {"argv": ["echo", "$(touch pwned)", "`touch pwned`", ";"]})
    assert "$(touch pwned) `touch pwned` ;" in _text(result)
    _no_pwned(workspace.parent)


# ── secrets ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("argv", [["env"], ["printenv"]])
async def test_secrets_never_reach_the_shell(
    monkeypatch: pytest.MonkeyPatch,
    context: Callable[..., ToolContext],
    tools: ToolCaller,
    argv: list[str],
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_KEY)
    monkeypatch.setenv("INNOCENT_NAME", "prefix-" + CANARY_KEY + "-suffix")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "a" * 36)
    monkeypatch.setenv("DATABASE_URL", "postgres://user:hunter2@db/x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-canary")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = scrubbed_environment(os.environ, [CANARY_KEY])
    result = await tools("lynkr_shell", {"argv": argv}, env=env)
    text = _text(result)
    assert not result.is_error
    for leaked in (CANARY_KEY, "canary-0123", "ghp_", "hunter2", "aws-secret-canary"):
        assert leaked not in text
    assert "PATH=" in text and "LANG=C.UTF-8" in text


async def test_shell_line_cannot_read_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tools: ToolCaller
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    env = scrubbed_environment(os.environ, [CANARY_KEY])
    line = 'echo "key=${OPENAI_API_KEY:-unset}"; cat /proc/self/environ | tr "\\0" "\\n"'
    text = _text(await tools("lynkr_shell", {"command": line}, env=env))
    assert "key=unset" in text and CANARY_KEY not in text


def test_home_can_point_away_from_credentials() -> None:
    env = scrubbed_environment({"HOME": "/root", "PATH": "/bin"}, [], home="/data/tool-home")
    assert env == {"HOME": "/data/tool-home", "PATH": "/bin"}


async def test_secrets_in_tool_output_are_redacted(tools: ToolCaller, workspace: Path) -> None:
    (workspace / ".env").write_text(f"ANTHROPIC_API_KEY={CANARY_KEY}\n")
    text = _text(await tools("lynkr_file_read", {"file_path": ".env"}))
    assert CANARY_KEY not in text and "[REDACTED]" in text


async def test_the_default_policy_refuses_reading_env_files_when_told(
    tools: ToolCaller, workspace: Path
) -> None:
    (workspace / ".env").write_text("X=1\n")
    policy = Policy.from_data({"files": {"deny": [".env"]}})
    result = await tools("lynkr_file_read", {"file_path": ".env"}, policy)
    assert result.is_error and "policy rule files.deny" in _text(result)


async def test_grep_does_not_show_files_the_policy_will_not_read(
    registry: Any, context: Callable[..., ToolContext], workspace: Path
) -> None:
    from lynkr.config.policy import load_policy_data
    from lynkr.policy import Policy

    policy = Policy.from_data(load_policy_data(DEFAULT_POLICY))
    (workspace / ".env").write_text("API_KEY=LYNKR_GREP_CANARY\n")
    (workspace / "notes.txt").write_text("LYNKR_GREP_CANARY is mentioned here\n")
    result = await registry.execute(
        "lynkr_file_grep", {"pattern": "LYNKR_GREP"}, context(policy=policy)
    )
    assert "notes.txt" in str(result.content)
    assert ".env" not in str(result.content) and "API_KEY" not in str(result.content)


async def test_patterns_that_would_backtrack_for_ever_run_in_linear_time(
    registry: Any, context: Callable[..., ToolContext], workspace: Path
) -> None:
    """Python's `re` took seconds on each (holding the GIL); RE2 answers at once."""
    (workspace / "a.txt").write_text("a" * 40 + "\n" + "a" * 30 + "b\n")
    no_ripgrep = context(env={"PATH": ""})  # the Python search, even where rg is installed
    for pattern in ("(a|a)*$", "(a*)*b", "(a+)+b", "(?:a|aa)+$x{0}(b*)*c"):
        result = await registry.execute("lynkr_file_grep", {"pattern": pattern}, no_ripgrep)
        assert not result.is_error, (pattern, result.content)
    found = await registry.execute("lynkr_file_grep", {"pattern": "(a+)+b"}, no_ripgrep)
    assert "a.txt:2:" in str(found.content)
    refused = await registry.execute("lynkr_file_grep", {"pattern": "(a)\\1"}, no_ripgrep)
    assert refused.is_error and "no backreferences" in str(refused.content)


async def test_a_diff_does_not_show_files_the_policy_will_not_read(
    registry: Any, context: Callable[..., ToolContext], workspace: Path
) -> None:
    from dulwich import porcelain

    from lynkr.config.policy import load_policy_data
    from lynkr.policy import Policy

    porcelain.init(str(workspace))
    (workspace / ".env").write_text("API_KEY=LYNKR_DIFF_CANARY\n")
    (workspace / "app.py").write_text("print('visible')\n")
    policy = Policy.from_data(load_policy_data(DEFAULT_POLICY))
    ctx = context(policy=policy)
    await registry.execute("lynkr_git_stage", {"all": True}, ctx)
    result = await registry.execute("lynkr_git_diff", {"staged": True}, ctx)
    assert "visible" in str(result.content)
    assert "LYNKR_DIFF_CANARY" not in str(result.content)
    assert "withheld" in str(result.content)
