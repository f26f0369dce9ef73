"""The policy evaluator: policy files → rules → decisions, for requests and for tool calls.

Pure: a decision is a function of the policy, the call and the workspace
object, which answers the only file-system questions asked (where a path
really points, what a wildcard matches: `Workspace` asks the disk, without
one paths are judged by their text). Used by the policy middleware
(request rules; `tool_use` blocks in responses) and by the agent's tool loop
(every server-side tool call), so it sits below both.

One module per job: `decision` (the result), `tool_calls`, `shell_rules`,
`path_rules` and `request_rules` (the rules), `shell_parser`, `shell_words`
and `shell_unwrap` (reading a bash line), `workspace` (where paths point),
`globs`, `model` (the policy file), `aliases`, `git`.

    policy = Policy.from_data(load_policy_data("policies/strict.yaml"))  # lynkr.config.policy
    decision = evaluate_tool_call(policy, "Bash", {"command": "ls; rm -rf /"},
                                  ToolContext(workspace=Workspace("/work/repo")))
    decision.allowed, decision.rule, decision.reason
    # False, 'shell.builtin_deny', "`rm` matches shell.builtin_deny pattern 'rm -r /'; …"
"""

from __future__ import annotations

from lynkr.policy.aliases import canonical_name
from lynkr.policy.decision import Decision, Rewrite, ToolContext
from lynkr.policy.model import (
    BUILTIN_DENY,
    CommandPattern,
    Denial,
    FileRules,
    GitRules,
    Policy,
    RequestRules,
    ShellRules,
    ToolRules,
)
from lynkr.policy.request_rules import evaluate_request
from lynkr.policy.shell_rules import evaluate_shell
from lynkr.policy.shell_unwrap import analyse
from lynkr.policy.shell_words import ShellParseError
from lynkr.policy.tool_calls import evaluate_tool_call
from lynkr.policy.workspace import Workspace, WorkspaceLike

__all__ = [
    "BUILTIN_DENY",
    "CommandPattern",
    "Decision",
    "Denial",
    "FileRules",
    "GitRules",
    "Policy",
    "RequestRules",
    "Rewrite",
    "ShellParseError",
    "ShellRules",
    "ToolContext",
    "ToolRules",
    "Workspace",
    "WorkspaceLike",
    "analyse",
    "canonical_name",
    "evaluate_request",
    "evaluate_shell",
    "evaluate_tool_call",
]
