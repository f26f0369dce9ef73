"""Decisions: what a policy says about a request or a tool call, as plain data.

Every evaluator returns a `Decision`: allowed or not, the rule that decided
(`files.workspace_only`, `shell.builtin_deny`, …) and a reason that says how
to change the outcome. `ToolContext` is what a caller knows about a tool call
beyond its name and input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lynkr.policy.model import Denial
from lynkr.policy.workspace import WorkspaceLike

__all__ = ["Decision", "Rewrite", "ToolContext", "deny"]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A change a request rule made to the body, for the log."""

    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed or not, the rule that decided, why (and how to change it), and rewrites made."""

    allowed: bool
    rule: str
    reason: str
    rewrites: tuple[Rewrite, ...] = ()
    tool: str | None = None  # the canonical tool name, for tool calls

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "rule": self.rule,
            "reason": self.reason,
            "tool": self.tool,
            "rewrites": [{"rule": r.rule, "detail": r.detail} for r in self.rewrites],
        }


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What the caller knows about the call: workspace, calls already made, test outcome.

    `workspace` answers every file-system question the path rules ask
    (`Workspace` reads the disk; any `WorkspaceLike` will do). Without one,
    paths are judged by their text alone and not confined (the middleware
    cannot see the client's disk); deny globs, read-only and system paths
    still apply.
    """

    workspace: WorkspaceLike | None = None
    calls_in_turn: int = 0
    tests_passed: bool | None = None


def deny(denial: Denial, tool: str | None = None) -> Decision:
    """The decision a rule's denial makes."""
    return Decision(False, denial.rule, denial.reason, tool=tool)
