"""Tool calls: may this tool run with these arguments?

`evaluate_tool_call` is what the agent calls before running any server-side
tool and what the policy middleware applies to `tool_use` blocks in responses.
It maps the tool's name to its canonical name first (`aliases.py`), so
`Bash`, `bash`, `lynkr_shell` and `shell` meet the same rules. The checks, in
order, each one a rule named in the decision:

1. `tools.max_calls_per_turn`, `tools.deny`, `tools.allow` (globs on the
   canonical and on the raw name, case-insensitive);
2. by family: `shell` lines (`shell_rules.py`), `file.*` paths (`path_rules.py`),
   `git.*` actions (`git.py`);
3. otherwise allowed (`tools.allow`).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from typing import Any

from lynkr.policy.aliases import canonical_name
from lynkr.policy.decision import Decision, ToolContext, deny
from lynkr.policy.git import check_git_tool
from lynkr.policy.globs import name_matches
from lynkr.policy.model import Denial, Policy
from lynkr.policy.path_rules import PathCheck
from lynkr.policy.shell_rules import evaluate_shell

__all__ = ["evaluate_tool_call"]


def evaluate_tool_call(
    policy: Policy,
    name: str,
    tool_input: Mapping[str, Any] | None,
    context: ToolContext | None = None,
) -> Decision:
    """May the tool called `name` run with `tool_input`? (Rules in the module doc.)"""
    context = context or ToolContext()
    tool = canonical_name(name)
    arguments = tool_input if isinstance(tool_input, Mapping) else {}
    denial = _tool_rules(policy, name, tool, context) or _family_rules(
        policy, tool, arguments, context
    )
    if denial is not None:
        return deny(denial, tool)
    if tool == "shell":
        decision = evaluate_shell(policy, _command_line(arguments) or "", context, _cwd(arguments))
        return Decision(decision.allowed, decision.rule, decision.reason, tool=tool)
    return Decision(True, "tools.allow", f"{name} ({tool}) is allowed", tool=tool)


def _tool_rules(policy: Policy, raw: str, tool: str, context: ToolContext) -> Denial | None:
    rules = policy.tools
    limit = rules.max_calls_per_turn
    if limit is not None and context.calls_in_turn >= limit:
        return Denial(
            "tools.max_calls_per_turn",
            f"this turn already made {context.calls_in_turn} tool calls, the policy's limit "
            f"(tools.max_calls_per_turn: {limit}); finish the turn or raise the limit",
        )
    hit = name_matches(rules.deny, tool) or name_matches(rules.deny, raw)
    if hit:
        return Denial("tools.deny", f"tool {raw} ({tool}) matches tools.deny {hit!r}")
    if not (name_matches(rules.allow, tool) or name_matches(rules.allow, raw)):
        return Denial("tools.allow", f"tool {raw} ({tool}) is not in tools.allow; add it there")
    return None


_PATH_KEYS = ("file_path", "path", "notebook_path", "file", "filename", "filepath")


def _family_rules(
    policy: Policy, tool: str, arguments: Mapping[str, Any], context: ToolContext
) -> Denial | None:
    family, _, action = tool.partition(".")
    if tool == "shell":
        if _command_line(arguments) is None:
            return Denial("shell.no_command", "the shell tool call has no 'command' string")
        cwd = _cwd(arguments)
        return PathCheck(policy, context).check(cwd, write=False) if cwd else None
    if family == "file":
        return _file_tool(policy, action, arguments, context)
    if family == "git":
        denial = check_git_tool(
            action,
            arguments,
            policy.git,
            read_only=policy.files.read_only,
            tests_passed=context.tests_passed,
        )
        return denial or _paths_in(policy, context, arguments, write=False)
    if family == "tests":
        return _paths_in(policy, context, arguments, write=False)
    return None


def _file_tool(
    policy: Policy, action: str, arguments: Mapping[str, Any], context: ToolContext
) -> Denial | None:
    writes = action in ("write", "edit")
    if writes and policy.files.read_only:
        return Denial("files.read_only", "this policy is read-only (files.read_only: true)")
    paths = [arguments[key] for key in _PATH_KEYS if isinstance(arguments.get(key), str)]
    if action in ("read", "write", "edit") and not paths:
        return Denial("files.no_path", f"the file.{action} call names no file_path")
    pattern = arguments.get("pattern")
    if action == "list" and isinstance(pattern, str):
        paths.append(_static_prefix(pattern))
    check = PathCheck(policy, context)
    for path in paths:
        denial = check.check(path, write=writes)
        if denial:
            return denial
    return None


def _paths_in(
    policy: Policy, context: ToolContext, arguments: Mapping[str, Any], *, write: bool
) -> Denial | None:
    check = PathCheck(policy, context)
    for key in (*_PATH_KEYS, "paths", "cwd", "directory"):
        values = arguments.get(key)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str):
                denial = check.check(value, write=write)
                if denial:
                    return denial
    return None


def _static_prefix(pattern: str) -> str:
    """The directory part of a glob before its first wildcard: `../**/*.py` → `..`."""
    cut = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
    return posixpath.dirname(cut) or "."


def _command_line(arguments: Mapping[str, Any]) -> str | None:
    for key in ("command", "cmd", "script"):
        if isinstance(arguments.get(key), str):
            return str(arguments[key])
    argv = arguments.get("argv", arguments.get("args"))
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
        return shlex.join(argv)
    return None


def _cwd(arguments: Mapping[str, Any]) -> str | None:
    for key in ("cwd", "workdir", "working_directory"):
        if isinstance(arguments.get(key), str):
            return str(arguments[key])
    return None
