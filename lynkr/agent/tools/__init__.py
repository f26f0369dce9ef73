"""lynkr's server-side tools: files, shell, git (dulwich), test profiles and tasks.

Used by the agent's tool loop when `tools.execution` is `server` or `hybrid`
(with `client`, the default, `build_registry` returns an empty registry and
lynkr runs nothing). Every call goes through `ToolRegistry.execute`, which
validates the arguments, asks the policy (`lynkr.policy.evaluate_tool_call`)
and bounds the run; see `registry.py`.

    registry = build_registry(config_tools_section, secrets=provider_keys)
    context = ToolContext(workspace=root, store=SQLiteToolStore(data_dir / "tools.sqlite3"),
                          policy=policy,
                          env=scrubbed_environment(os.environ, provider_keys, home=...),
                          session_id=session_id, turn_tool_calls=calls_so_far)
    result = await registry.execute("lynkr_git_status", {}, context)
"""

from __future__ import annotations

from lynkr.agent.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec
from lynkr.agent.tools.registry import (
    DEFAULT_FAMILIES,
    EXECUTION_MODES,
    FAMILIES,
    ToolRegistry,
    build_registry,
    scrubbed_environment,
    tool_registry,
)

__all__ = [
    "DEFAULT_FAMILIES",
    "EXECUTION_MODES",
    "FAMILIES",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "build_registry",
    "scrubbed_environment",
    "tool_registry",
]
