"""What every files tool's spec shares: the family `files` and the schema of a path argument.

A module of its own so that reading, writing and searching build their specs
one way without importing one another for it.
"""

from __future__ import annotations

from typing import Any

from lynkr.agent.tools.base import ToolSpec

__all__ = ["PATH", "file_spec"]

PATH = {"type": "string", "minLength": 1}


def file_spec(name: str, canonical: str, description: str, schema: dict[str, Any]) -> ToolSpec:
    """The spec of files tool `name`; the policy judges it as `canonical` (`file.read`…)."""
    return ToolSpec(name, description, schema, "files", canonical)
