"""Tool definitions and `tool_choice`, Anthropic → OpenAI Chat Completions (pure).

The `tools`, `tool_choice` and `parallel_tool_calls` fields of the request
`openai_request.to_openai_request` builds. Section labels (B.3) and case
numbers are docs/protocol.md's.
"""

from __future__ import annotations

from typing import Any

from lynkr.protocol.openai_dialect import OpenAIDialect
from lynkr.protocol.server_tools import strip_server_tools

__all__ = ["tool_fields"]

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}

Json = dict[str, Any]


def tool_fields(body: Json, dialect: OpenAIDialect) -> Json:
    """B.3 rows `tools[]`, `tools: []`, server tools, `tool_choice`, `disable_parallel_tool_use`.

    No client tool left (an empty list, only server tools, or a dialect
    without tools) omits `tools`, `tool_choice` and `parallel_tool_calls`.
    `parallel_tool_calls` is false when the client disables parallel use,
    else the dialect's default (llama.cpp: true, its own default being off).
    """
    tools = strip_server_tools(body.get("tools")) if dialect.supports_tools else []
    if not tools:
        return {}
    out: Json = {"tools": [_tool(tool, dialect) for tool in tools]}
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        mapped = _tool_choice(choice, {tool["name"] for tool in tools})
        if mapped is not None:
            out["tool_choice"] = mapped
        if choice.get("disable_parallel_tool_use") is True:
            out["parallel_tool_calls"] = False
    if "parallel_tool_calls" not in out and dialect.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = dialect.parallel_tool_calls
    return out


def _tool(tool: Json, dialect: OpenAIDialect) -> Json:
    """One client tool as an OpenAI function (case 8): `$schema`, `cache_control`, `strict` go.

    Spec silent: a tool without `input_schema` gets an empty object schema.
    """
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        schema = {"type": "object", "properties": {}}
    parameters = {key: value for key, value in schema.items() if key != "$schema"}
    if dialect.strip_additional_properties:
        parameters = _without_additional_properties(parameters)
    function: Json = {"name": tool["name"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def _without_additional_properties(schema: Any) -> Any:
    """`schema` without any `additionalProperties` keyword (B.3 tools note: Gemini rejects it).

    Names under `properties` are property names, not keywords: a property
    called `additionalProperties` stays.
    """
    if isinstance(schema, list):
        return [_without_additional_properties(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Json = {}
    for key, value in schema.items():
        if key == "additionalProperties":
            continue
        if key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(
            value, dict
        ):
            out[key] = {name: _without_additional_properties(sub) for name, sub in value.items()}
        else:
            out[key] = _without_additional_properties(value)
    return out


def _tool_choice(choice: Json, names: set[str]) -> Any:
    """B.3 rows `tool_choice` (case 10). Spec silent: forcing a tool that is not sent
    (a dropped server tool) sends no `tool_choice`, leaving the upstream's auto."""
    kind = choice.get("type")
    if kind == "tool":
        name = choice.get("name")
        return {"type": "function", "function": {"name": name}} if name in names else None
    return _TOOL_CHOICE.get(kind) if isinstance(kind, str) else None
