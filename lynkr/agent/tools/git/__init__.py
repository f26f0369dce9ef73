"""The git family, through dulwich: no `git` binary, no shell, no hooks.

The repository is the workspace root, opened without its hooks; arguments the
model gives are data, never options (refs checked with git's own rules,
remotes only by configured name, paths confined to the workspace); push and
pull run only when the policy allows them, and pull only fast-forwards.
One module per job:

- `repository`: opening the repository, checking refs, revisions and paths,
  and `GitTool`, the base every git tool is built on;
- `reading`: the tools that only look (status, diff, log, branches);
- `changing`: the tools that change the repository (stage, unstage, commit,
  checkout, stash);
- `remotes`: push and pull;
- `release_notes`: the facts for release notes, as JSON.
"""

from __future__ import annotations

from typing import Any

from lynkr.agent.tools.git.changing import (
    CheckoutTool,
    CommitTool,
    StageTool,
    StashTool,
    UnstageTool,
)
from lynkr.agent.tools.git.reading import BranchesTool, DiffTool, LogTool, StatusTool
from lynkr.agent.tools.git.release_notes import ReleaseNotesTool
from lynkr.agent.tools.git.remotes import PullTool, PushTool
from lynkr.agent.tools.git.repository import valid_ref

__all__ = ["CommitTool", "git_tools", "valid_ref"]


def git_tools(*, author: str | None = None) -> list[Any]:
    """The git family, in the order the model sees them."""
    return [
        StatusTool(),
        DiffTool(),
        StageTool(),
        UnstageTool(),
        CommitTool(author=author),
        LogTool(),
        BranchesTool(),
        CheckoutTool(),
        StashTool(),
        PushTool(),
        PullTool(),
        ReleaseNotesTool(),
    ]
