"""Which workspace a request belongs to, read from the request alone (pure).

Claude Code names its project directory in its system prompt
(`Primary working directory: /path`, or `Working directory:` in older
versions); an `x-lynkr-workspace` header overrides it; anything else is the
`default` workspace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lynkr.memory.model import DEFAULT_WORKSPACE

__all__ = ["WORKSPACE_HEADER", "normalise_workspace", "workspace_of"]

WORKSPACE_HEADER = "x-lynkr-workspace"
_MAX_CHARS = 1024
_LINE = re.compile(
    r"^[ \t]*(?:-[ \t]*)?(?:Primary working directory|Working directory):[ \t]*(\S[^\n]*?)[ \t]*$",
    re.MULTILINE,
)


def normalise_workspace(path: str) -> str:
    """A workspace name as stored: no trailing separator, no surrounding space."""
    path = path.strip()
    while len(path) > 1 and path[-1] in "/\\" and not path.endswith(":\\"):
        path = path[:-1]
    return path[:_MAX_CHARS]


def workspace_of(body: Mapping[str, Any], header: str | None = None) -> str:
    """The header's workspace, else the system prompt's working directory, else `default`."""
    if header and header.strip():
        return normalise_workspace(header)
    for text in _system_texts(body.get("system")):
        match = _LINE.search(text)
        if match:
            return normalise_workspace(match.group(1))
    return DEFAULT_WORKSPACE


def _system_texts(system: Any) -> list[str]:
    if isinstance(system, str):
        return [system]
    if isinstance(system, list):
        return [
            block["text"]
            for block in system
            if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        ]
    return []
