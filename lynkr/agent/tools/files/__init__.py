"""The files family: read, write, edit, glob, grep, and an edit history with revert.

Semantics follow Claude Code's own tools, so a model that knows `Read`,
`Write` and `Edit` knows these. One module per job:

- `reading`: read, with image sniffing, and the guarded open that writing
  uses too;
- `writing`: write and edit, each recorded in the edit history, and the
  history and revert tools;
- `searching`: glob and grep, and the check that a path is one the policy
  lets be read (git's diff applies it too);
- `spec`: what every files tool's spec shares.
"""

from __future__ import annotations

from typing import Any

from lynkr.agent.tools.files.reading import ReadFileTool
from lynkr.agent.tools.files.searching import GlobTool, GrepTool
from lynkr.agent.tools.files.writing import (
    EditFileTool,
    FileHistoryTool,
    RevertEditTool,
    WriteFileTool,
)

__all__ = [
    "EditFileTool",
    "FileHistoryTool",
    "GlobTool",
    "GrepTool",
    "ReadFileTool",
    "RevertEditTool",
    "WriteFileTool",
    "file_tools",
]


def file_tools() -> list[Any]:
    """The files family, in the order the model sees them."""
    return [
        ReadFileTool(),
        WriteFileTool(),
        EditFileTool(),
        GlobTool(),
        GrepTool(),
        FileHistoryTool(),
        RevertEditTool(),
    ]
