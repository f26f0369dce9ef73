"""The registry's contract: validation, policy, timeouts, error hygiene, caps, config."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from lynkr.agent.tools import (
    DEFAULT_FAMILIES,
    ToolContext,
    ToolRegistry,
    ToolResult,
    ToolSpec,
    build_registry,
    scrubbed_environment,
)
from lynkr.agent.tools.base import object_schema
from lynkr.policy import Policy, canonical_name
from tests.agent.tools.conftest import CANARY_KEY, ToolCaller, tool_options

pytestmark = pytest.mark.anyio


class _Custom:
    """A tool whose behaviour a test chooses."""

    def __init__(self, behaviour: Callable[[], Any], timeout: float | None = None) -> None:
        self.behaviour = behaviour
        self.timeout = timeout
        self.spec = ToolSpec(
            "lynkr_tasks_custom", "test", object_schema({}), "tasks", "tasks.custom"
        )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        value = self.behaviour()
        if asyncio.iscoroutine(value):
            value = await value
        return ToolResult(str(value))


async def _execute(
    tool: _Custom, context: Callable[..., ToolContext], **options: Any
) -> ToolResult:
    registry = ToolRegistry([tool], secrets=[CANARY_KEY], **options)
    result: ToolResult = await registry.execute("lynkr_tasks_custom", {}, context())
    return result


def test_every_spec_is_well_formed(registry: ToolRegistry) -> None:
    names = [spec.name for spec in registry.specs()]
    assert len(names) == len(set(names)) == 26
    for spec in registry.specs():
        Draft202012Validator.check_schema(spec.input_schema)
        assert spec.input_schema["type"] == "object"
        assert spec.input_schema["additionalProperties"] is False
        assert spec.name.startswith("lynkr_") and len(spec.description) > 20
        assert spec.family in ("files", "shell", "git", "tests", "tasks")
    tools = registry.anthropic_tools()
    assert set(tools[0]) == {"name", "description", "input_schema"}


def test_canonical_names_are_the_policys(registry: ToolRegistry) -> None:
    """The policy maps each tool's name to its canonical name (the revert tool is an edit)."""
    for spec in registry.specs():
        if spec.name == "lynkr_file_revert":
            assert spec.canonical == "file.edit"
        else:
            assert canonical_name(spec.name) == spec.canonical, spec.name


async def test_validation_errors_name_the_field(tools: ToolCaller) -> None:
    missing = await tools("lynkr_file_read", {})
    assert missing.is_error
    assert missing.content == (
        "invalid input for lynkr_file_read: $: 'file_path' is a required property"
    )
    wrong = await tools("lynkr_file_read", {"file_path": "a", "offset": "ten"})
    assert "$.offset: 'ten' is not of type 'integer'" in str(wrong.content)
    extra = await tools("lynkr_file_read", {"file_path": "a", "path": "b"})
    assert "Additional properties are not allowed ('path'" in str(extra.content)


async def test_unknown_tool(tools: ToolCaller) -> None:
    result = await tools("Bash", {"command": "ls"})
    assert result.is_error and "unknown tool 'Bash'" in str(result.content)


async def test_policy_denials_name_the_rule(tools: ToolCaller, workspace: Path) -> None:
    deny_git = Policy.from_data({"tools": {"deny": ["git.*"]}})
    result = await tools("lynkr_git_status", {}, deny_git)
    assert result.is_error and str(result.content).startswith("refused by policy rule tools.deny:")
    read_only = Policy.from_data({"files": {"read_only": True}})
    write = await tools("lynkr_file_write", {"file_path": "a", "content": "x"}, read_only)
    assert "policy rule files.read_only" in str(write.content)
    assert not (workspace / "a").exists()
    budget = Policy.from_data({"tools": {"max_calls_per_turn": 3}})
    over = await tools("lynkr_tasks_list", {}, budget, turn_tool_calls=3)
    assert "policy rule tools.max_calls_per_turn" in str(over.content)
    assert not (await tools("lynkr_tasks_list", {}, budget, turn_tool_calls=2)).is_error


def _spy_on_policy(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[bool]:
    """Whether each `evaluate_tool_call` that `module` makes runs without an event loop."""
    off_the_loop: list[bool] = []
    real = module.evaluate_tool_call

    def spy(*args: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            off_the_loop.append(True)
        else:
            off_the_loop.append(False)
        return real(*args)

    monkeypatch.setattr(module, "evaluate_tool_call", spy)
    return off_the_loop


async def test_the_policy_is_asked_off_the_event_loop(
    tools: ToolCaller, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the disk workspace a decision reads symlinks and lists directories: in a thread."""
    from lynkr.agent.tools import registry
    from lynkr.agent.tools.files import searching

    before_running = _spy_on_policy(monkeypatch, registry)
    before_showing = _spy_on_policy(monkeypatch, searching)
    (workspace / "a.py").write_text("TODO = 1\n")
    result = await tools("lynkr_file_grep", {"pattern": "TODO"}, Policy())
    assert result.content == "a.py:1:TODO = 1"
    assert before_running == [True]  # the grep call itself
    assert before_showing == [True]  # a.py, judged readable before it is shown


async def test_revert_is_judged_as_a_write(tools: ToolCaller, workspace: Path) -> None:
    await tools("lynkr_file_write", {"file_path": "a.txt", "content": "x"})
    read_only = Policy.from_data({"files": {"read_only": True}})
    result = await tools("lynkr_file_revert", {"edit_id": 1}, read_only)
    assert "policy rule files.read_only" in str(result.content)
    assert (workspace / "a.txt").exists()


async def test_a_slow_tool_is_stopped(context: Callable[..., ToolContext]) -> None:
    result = await _execute(_Custom(lambda: asyncio.sleep(30)), context, timeout_seconds=0.2)
    assert result.is_error and result.content == "lynkr_tasks_custom did not finish within 0.2 s"
    own = await _execute(_Custom(lambda: asyncio.sleep(30), timeout=0.1), context)
    assert own.content == "lynkr_tasks_custom did not finish within 0.1 s"


async def test_exceptions_become_results_without_paths_or_keys(
    context: Callable[..., ToolContext], workspace: Path
) -> None:
    def fail() -> None:
        raise OSError(f"cannot open {workspace}/src/a.py nor /etc/lynkr/secret.yaml: {CANARY_KEY}")

    result = await _execute(_Custom(fail), context)
    assert result.is_error
    text = str(result.content)
    assert text.startswith("lynkr_tasks_custom failed: OSError: cannot open src/a.py nor <path>")
    assert "/etc" not in text and str(workspace) not in text and CANARY_KEY not in text
    assert "sk-ant" not in text


async def test_output_is_capped_and_redacted(context: Callable[..., ToolContext]) -> None:
    result = await _execute(
        _Custom(lambda: CANARY_KEY + "x" * 5000), context, max_output_chars=1000
    )
    text = str(result.content)
    assert text.startswith("[REDACTED]xxx") and text.endswith("characters cut]")
    assert len(text) < 1100


async def test_cancellation_propagates(context: Callable[..., ToolContext]) -> None:
    running = asyncio.Event()

    async def hang() -> None:
        running.set()
        await asyncio.sleep(30)  # cancelled long before

    registry = ToolRegistry([_Custom(hang)])

    task = asyncio.ensure_future(registry.execute("lynkr_tasks_custom", {}, context()))
    await running.wait()  # the tool is running inside the registry's call
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_build_registry_families_and_modes() -> None:
    assert len(build_registry({})) == 0
    assert len(build_registry({"execution": "passthrough", "enabled": ["files"]})) == 0
    default = build_registry({"execution": "server"})
    families = {spec.family for spec in default.specs()}
    assert families == set(DEFAULT_FAMILIES)
    assert "lynkr_shell" not in default and "lynkr_tests_run" not in default
    assert "lynkr_tests_summary" in default
    hybrid = build_registry(tool_options(execution="hybrid"))
    assert "lynkr_shell" in hybrid and "lynkr_tests_run" in hybrid


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"execution": "sometimes"}, "tools.execution"),
        ({"execution": "server", "enabled": ["web"]}, "unknown family 'web'"),
        ({"execution": "server", "enabled": ["shell"], "shell": {"sandbox": "docker"}}, "sandbox"),
        ({"execution": "server", "tests": {"profiles": {"u": {}}}}, "profiles.u.command"),
    ],
)
def test_build_registry_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_registry(options)


def test_scrubbed_environment_keeps_the_harmless() -> None:
    environ = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "VIRTUAL_ENV": "/venv",
        "ANTHROPIC_API_KEY": "a",
        "OPENAI_KEY": "b",
        "HF_TOKEN": "c",
        "MY_SECRET": "d",
        "AWS_PROFILE": "e",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "UPSTREAM": "has " + CANARY_KEY,
        "PIP_INDEX_URL": "https://user:pw@pypi.example/simple",
        "SHORT": "abc",
    }
    env = scrubbed_environment(environ, [CANARY_KEY, "abc"])
    assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "VIRTUAL_ENV": "/venv", "SHORT": "abc"}


async def test_policy_must_be_a_policy(tools: ToolCaller) -> None:
    result = await tools("lynkr_tasks_list", {}, {"not": "a policy"})
    assert result.is_error and "lynkr.policy.Policy" in str(result.content)
