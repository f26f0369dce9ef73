"""Answers that exist whole before they are sent: local answers and non-streamed upstream replies.

Shared by the translating adapters (OpenAI dialects, Ollama), which sometimes
hold a complete Anthropic message — a local answer to a server-tool request
(docs/protocol.md A.8, case 49), or an answer fetched whole to repair tool calls —
and must still answer a streaming client with a valid SSE sequence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

import orjson

from lynkr.protocol.server_tools import message_as_sse
from lynkr.protocol.tool_repair import repair_text_tool_calls
from lynkr.providers.base import ProviderResponse

__all__ = ["repair_tool_calls", "single_chunk", "whole_message"]


def whole_message(
    message: dict[str, Any],
    *,
    stream: bool,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> ProviderResponse:
    """A complete Anthropic message as a response: JSON, or replayed as a valid SSE stream."""
    data = message_as_sse(message) if stream else orjson.dumps(message)
    return ProviderResponse(stream, single_chunk(data), list(headers or ()))


def repair_tool_calls(message: dict[str, Any], request_body: dict[str, Any]) -> dict[str, Any]:
    """`message` with tool calls written as text turned into tool_use blocks (known tools only)."""
    return repair_text_tool_calls(message, _tool_names(request_body))


def _tool_names(body: dict[str, Any]) -> Collection[str]:
    tools = body.get("tools") or ()
    return [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]


async def single_chunk(data: bytes) -> AsyncIterator[bytes]:
    """An answer's chunks when the whole answer is one buffer."""
    yield data
