"""The tool registry: one `execute` that validates, asks the policy, runs, bounds and cleans.

`ToolRegistry.execute(name, arguments, context)` never raises (except on
cancellation) and always returns a `ToolResult`. In order:

1. unknown name → an error naming the tools that exist;
2. the arguments are checked against the tool's JSON Schema → an error naming
   the field (`$.file_path: 'file_path' is a required property`);
3. the policy (`lynkr.policy.evaluate_tool_call`, on the tool's name, which
   maps to its canonical name; a tool's `async policy_input(arguments,
   context)`, when it has one, says what the policy should see, e.g. the file
   a revert rewrites) → a denial is an error naming the rule
   (`refused by policy rule git.allow_push: …`). When the only obstacle is
   `git.require_tests`, a tool that can run the tests (the commit tool) runs
   them and the policy is asked again with the outcome;
4. the tool runs under a timeout (its own `timeout` attribute, else the
   registry's); `ToolError` becomes its message, any other exception a short
   description with every server path outside the workspace replaced;
5. the result is capped (`max_output_chars`) and every configured secret in
   it is replaced by `[REDACTED]`.

`build_registry(options)` builds the registry from the `tools:` section of
lynkr.yaml; `scrubbed_environment` makes the environment tools see.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lynkr.agent.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec
from lynkr.agent.tools.files import file_tools
from lynkr.agent.tools.git import git_tools
from lynkr.agent.tools.shell import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, ShellTool
from lynkr.agent.tools.tasks import task_tools
from lynkr.agent.tools.testruns import TestProfile, testrun_tools
from lynkr.policy import Decision, Policy, Workspace, canonical_name, evaluate_tool_call
from lynkr.policy import ToolContext as PolicyContext

__all__ = [
    "ALIASES",
    "DEFAULT_FAMILIES",
    "EXECUTION_MODES",
    "FAMILIES",
    "ToolRegistry",
    "build_registry",
    "scrubbed_environment",
    "tool_registry",
]

FAMILIES = ("files", "shell", "git", "tests", "tasks", "memory", "index")
# The original lynkr's tool names (its docs and users' scripts name them) → lynkr's own.
ALIASES = {
    "workspace_index_rebuild": "lynkr_index_rebuild",
    "workspace_symbol_search": "lynkr_index_symbols",
    "workspace_symbol_references": "lynkr_index_refs",
    "workspace_search": "lynkr_file_grep",
    "workspace_list": "lynkr_file_glob",
    "workspace_test_run": "lynkr_tests_run",
    "workspace_test_summary": "lynkr_tests_summary",
    "workspace_tasks_list": "lynkr_tasks_list",
    "workspace_task_create": "lynkr_tasks_create",
    "workspace_task_update": "lynkr_tasks_update",
    "workspace_task_delete": "lynkr_tasks_delete",
    "workspace_release_notes": "lynkr_git_release_notes",
}
DEFAULT_FAMILIES = ("files", "git", "tests", "tasks")
EXECUTION_MODES = ("client", "passthrough", "server", "hybrid")
DEFAULT_TIMEOUT_SECONDS = 120.0
DEFAULT_MAX_OUTPUT_CHARS = 100_000
_REDACTED = "[REDACTED]"
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s'\"/:]+/)*[^\s'\":]+")
_KEY_SHAPES = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})")


class ToolRegistry:
    """The tools lynkr may run, by name; `execute` is the only way to run one."""

    def __init__(
        self,
        tools: Sequence[Tool],
        *,
        secrets: Iterable[str] = (),
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Draft202012Validator] = {}
        for tool in tools:
            name = tool.spec.name
            if name in self._tools:
                raise ValueError(f"two tools are named {name!r}")
            Draft202012Validator.check_schema(tool.spec.input_schema)
            self._tools[name] = tool
            self._validators[name] = Draft202012Validator(tool.spec.input_schema)
        self._secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)
        self.timeout_seconds = timeout_seconds
        self.max_output_chars = max_output_chars

    def specs(self) -> list[ToolSpec]:
        """Every tool's spec, in registration order."""
        return [tool.spec for tool in self._tools.values()]

    def anthropic_tools(self) -> list[dict[str, Any]]:
        """The tools as the Messages API's `tools` entries."""
        return [
            {"name": s.name, "description": s.description, "input_schema": s.input_schema}
            for s in self.specs()
        ]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def canonical(self, name: str) -> str:
        """lynkr's name for `name` when it is one of the original's (`ALIASES`) it has."""
        alias = ALIASES.get(name)
        return alias if alias in self._tools else name

    async def execute(
        self, name: str, arguments: dict[str, Any], context: ToolContext
    ) -> ToolResult:
        """Run one tool call; see the module docstring. Never raises but on cancellation."""
        name = self.canonical(name)
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return ToolResult(f"unknown tool {name!r}; lynkr's tools here: {known}", True)
        if not isinstance(arguments, dict):
            return ToolResult(f"invalid input for {name}: expected an object", True)
        invalid = self._invalid(name, arguments)
        if invalid:
            return ToolResult(f"invalid input for {name}: {invalid}", True)
        try:
            refusal = await self._refusal(tool, arguments, context)
            result = (
                ToolResult(refusal, True) if refusal else await self._run(tool, arguments, context)
            )
        except ToolError as error:
            result = ToolResult(str(error), True)
        except Exception as error:  # any failure is the model's result, never the loop's
            result = ToolResult(f"{name} failed: {_describe(error, context)}", True)
        return self._finish(result)

    def _invalid(self, name: str, arguments: dict[str, Any]) -> str | None:
        error = best_match(self._validators[name].iter_errors(arguments))
        if error is None:
            return None
        message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        return f"{error.json_path}: {message}"

    async def _refusal(self, tool: Tool, arguments: dict[str, Any], context: ToolContext) -> str:
        """The policy's refusal as text (naming the rule), or '' when the call may run."""
        policy = context.policy
        if policy is None:
            return ""
        if not isinstance(policy, Policy):
            raise TypeError("ToolContext.policy must be a lynkr.policy.Policy or None")
        tool_input = arguments
        policy_input = getattr(tool, "policy_input", None)
        if policy_input is not None:
            tool_input = await policy_input(arguments, context)
        name = _policy_name(tool.spec)
        decision = await _evaluate(policy, name, tool_input, context, None)
        note = ""
        run_tests = getattr(tool, "run_required_tests", None)
        if not decision.allowed and decision.rule == "git.require_tests" and run_tests:
            passed, note = await run_tests(context)
            decision = await _evaluate(policy, name, tool_input, context, passed)
        if decision.allowed:
            return ""
        refusal = f"refused by policy rule {decision.rule}: {decision.reason}"
        return f"{refusal}\n{note}" if note else refusal

    async def _run(self, tool: Tool, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        timeout = float(getattr(tool, "timeout", None) or self.timeout_seconds)
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await tool.run(arguments, context)
        except TimeoutError as error:
            if deadline.expired():
                raise ToolError(f"{tool.spec.name} did not finish within {timeout:g} s") from error
            raise

    def _finish(self, result: ToolResult) -> ToolResult:
        if isinstance(result.content, str):
            return ToolResult(self._clean(result.content), result.is_error)
        blocks = [
            {**b, "text": self._clean(b["text"])} if b.get("type") == "text" else b
            for b in result.content
        ]
        return ToolResult(blocks, result.is_error)

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        if len(text) > self.max_output_chars:
            omitted = len(text) - self.max_output_chars
            text = text[: self.max_output_chars] + f"\n[… {omitted} characters cut]"
        return text


def _policy_name(spec: ToolSpec) -> str:
    """The tool's own name when the policy maps it to the spec's canonical name, else that name.

    `lynkr_file_revert` would map to `file.revert`, which the policy does not
    know as a write; its spec says `file.edit`, so the policy is asked about that.
    """
    return spec.name if canonical_name(spec.name) == spec.canonical else spec.canonical


async def _evaluate(
    policy: Policy,
    name: str,
    tool_input: Mapping[str, Any],
    context: ToolContext,
    tests_passed: bool | None,
) -> Decision:
    """The policy's decision, from a worker thread: with the disk workspace, judging a
    call resolves symlinks and lists directories (a wildcard in a shell line)."""
    policy_context = PolicyContext(
        workspace=Workspace(root=str(context.workspace)),
        calls_in_turn=context.turn_tool_calls,
        tests_passed=tests_passed,
    )
    return await asyncio.to_thread(evaluate_tool_call, policy, name, tool_input, policy_context)


def _describe(error: BaseException, context: ToolContext) -> str:
    """`Type: message` without server paths outside the workspace or key-shaped strings."""
    text = f"{type(error).__name__}: {error}"
    root = os.path.realpath(context.workspace)
    for prefix in {root, str(context.workspace)}:
        text = text.replace(prefix + "/", "").replace(prefix, ".")
    text = _ABSOLUTE_PATH.sub("<path>", text)
    text = _KEY_SHAPES.sub(_REDACTED, text)
    return text[:500]


# ── building from config ─────────────────────────────────────────────────────


def build_registry(options: Mapping[str, Any], *, secrets: Iterable[str] = ()) -> ToolRegistry:
    """The registry a `tools:` section (as data) asks for; `ValueError` names a bad key.

    With `execution: client` (the default; alias `passthrough`) the registry is
    empty: lynkr runs no tool at all. The stack, which has the section validated
    and typed already, calls `tool_registry` directly.
    """
    execution = options.get("execution", "client")
    if execution not in EXECUTION_MODES:
        raise ValueError(f"tools.execution must be one of {', '.join(EXECUTION_MODES)}")
    if execution in ("client", "passthrough"):
        return ToolRegistry([], secrets=secrets)
    shell = options.get("shell") or {}
    sandbox = shell.get("sandbox", "none")
    if sandbox != "none":
        raise ValueError(
            f"tools.shell.sandbox: {sandbox!r} is not built; the only mode is 'none' "
            "(commands run as lynkr's user, confined by the policy)"
        )
    profiles = (options.get("tests") or {}).get("profiles") or {}
    return tool_registry(
        options.get("enabled", DEFAULT_FAMILIES),
        shell_timeout_seconds=float(shell.get("timeout_seconds", DEFAULT_TIMEOUT)),
        shell_max_output_bytes=int(shell.get("max_output_bytes", DEFAULT_MAX_OUTPUT)),
        git_author=(options.get("git") or {}).get("author"),
        test_profiles={
            name: TestProfile.from_options(name, spec) for name, spec in profiles.items()
        },
        secrets=secrets,
    )


def tool_registry(
    families: Sequence[str] = DEFAULT_FAMILIES,
    *,
    shell_timeout_seconds: float = DEFAULT_TIMEOUT,
    shell_max_output_bytes: int = DEFAULT_MAX_OUTPUT,
    git_author: str | None = None,
    test_profiles: Mapping[str, TestProfile] | None = None,
    secrets: Iterable[str] = (),
) -> ToolRegistry:
    """The registry of these tool families; `ValueError` names an unknown family."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"tools.enabled: unknown family {unknown[0]!r} (known: {FAMILIES})")
    tools: list[Any] = []
    if "files" in families:
        tools += file_tools()
    if "shell" in families:
        tools.append(
            ShellTool(
                timeout_seconds=shell_timeout_seconds, max_output_bytes=shell_max_output_bytes
            )
        )
    if "git" in families:
        tools += git_tools(author=git_author)
    if "tests" in families:
        tools += testrun_tools(test_profiles or {})
    if "tasks" in families:
        tools += task_tools()
    if "memory" in families:
        from lynkr.agent.tools.memory import memory_tools

        tools += memory_tools()
    if "index" in families:
        from lynkr.agent.tools.index import index_tools

        tools += index_tools()
    return ToolRegistry(tools, secrets=secrets)


# ── the environment tools see ────────────────────────────────────────────────

_SECRET_NAMES = re.compile(
    r"(API_?KEY|APIKEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|_KEY$|^KEY$|AUTH"
    r"|COOKIE|SESSION|^AWS_|^AZURE_|^GOOGLE_|^GCP_|^GCLOUD_|^ANTHROPIC_|^OPENAI_|^OPENROUTER_"
    r"|^DATABRICKS_|^MISTRAL_|^GROQ_|^HF_|^HUGGING|^LYNKR_|^CLAUDE_|^SSH_|^GPG_|^GNUPG"
    r"|^DOCKER_|^KUBECONFIG$|^NETRC$|^PGPASS|^MYSQL_PWD$|_DSN$|^DATABASE_URL$)",
    re.IGNORECASE,
)
_SECRET_VALUES = re.compile(
    r"(sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|xox[abpr]-"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY|://[^/\s:@]+:[^/\s@]+@)"
)


def scrubbed_environment(
    environ: Mapping[str, str], secrets: Iterable[str], *, home: str | Path | None = None
) -> dict[str, str]:
    """The environment a tool's process gets: `environ` without lynkr's secrets.

    Dropped: any variable whose value contains one of `secrets` (provider
    keys, ≥ 8 characters), whose name looks like a credential (`*_API_KEY`,
    `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `AWS_*`, `ANTHROPIC_*`, `SSH_AUTH_SOCK`,
    …), or whose value looks like one (`sk-…`, `ghp_…`, a URL with a password,
    a private key). Kept: everything else (PATH, LANG, TERM, VIRTUAL_ENV…).
    `home`, when given, becomes HOME, so `~/.netrc`, `~/.aws`, `~/.ssh` and
    `~/.git-credentials` are not where a tool looks for them.
    """
    known = [s for s in secrets if len(s) >= 8]
    kept = {
        name: value
        for name, value in environ.items()
        if not _SECRET_NAMES.search(name)
        and not _SECRET_VALUES.search(value)
        and not any(secret in value for secret in known)
    }
    if home is not None:
        kept["HOME"] = str(home)
    return kept
