"""Anthropic server tools on upstreams that cannot run them (docs/protocol.md A.8, B.3, case 49).

Server tools (`web_search_20250305`, `web_fetch_…`, `code_execution_…`) are
run by Anthropic, not by the client; an OpenAI-format upstream has no such
thing. B.3: drop them from the request, and when the request *forces* one —
Claude Code's WebSearch sub-request does (A.8) — answer locally with a plain
text message, which Claude Code puts into its tool result.

`message_as_sse` replays any complete Message as a valid stream, for a local
answer (or an answer fetched whole) given to a client that asked to stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from lynkr.protocol.openai_response import new_id
from lynkr.protocol.openai_stream import frame

__all__ = ["is_server_tool", "local_server_tool_answer", "message_as_sse", "strip_server_tools"]

Json = dict[str, Any]


def is_server_tool(tool: Any) -> bool:
    """A server tool has a `type` (B.1 "tool definitions"); client tools have none, or "custom"."""
    return isinstance(tool, dict) and isinstance(tool.get("type"), str) and tool["type"] != "custom"


def strip_server_tools(tools: Any) -> list[Json]:
    """The client tools of a request's `tools` value: server tools and malformed entries go."""
    if not isinstance(tools, list):
        return []
    return [
        tool
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and not is_server_tool(tool)
    ]


def local_server_tool_answer(body: Json, *, model: str) -> Json | None:
    """The local answer to a request forcing a server tool, else None (B.3 row "server tools").

    The request forces one when `tool_choice` is `{type:"tool", name}` and
    the tool of that name is a server tool. The answer is a complete
    Message: one text block ("Web search is not available with this
    provider." for `web_search`), `end_turn`, usage all zero, `model` echoed.
    """
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "tool":
        return None
    name = choice.get("name")
    tools = body.get("tools")
    if not any(is_server_tool(t) and t.get("name") == name for t in tools or ()):
        return None
    label = str(name).replace("_", " ").capitalize()
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": f"{label} is not available with this provider."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def message_as_sse(message: Json) -> bytes:
    """A complete Message as the Anthropic event sequence a stream of it would be (B.1 grammar).

    `message_start` carries the message without content and with zero output
    tokens; each block is started, filled by deltas and stopped, index 0,
    1, 2…; `message_delta` carries the stop reason and the full usage, and
    `message_stop` ends it. Empty text blocks are skipped (A.6 #7).
    """
    usage = message.get("usage") or {}
    head = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    head["usage"] = {**usage, "output_tokens": 0}
    out = [frame({"type": "message_start", "message": head})]
    blocks = [b for b in message.get("content") or () if not _is_empty_text(b)]
    for index, block in enumerate(blocks):
        start, deltas = _block_events(block)
        out.append(frame({"type": "content_block_start", "index": index, "content_block": start}))
        for delta in deltas:
            out.append(frame({"type": "content_block_delta", "index": index, "delta": delta}))
        out.append(frame({"type": "content_block_stop", "index": index}))
    delta = {
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence"),
    }
    out.append(frame({"type": "message_delta", "delta": delta, "usage": usage}))
    out.append(frame({"type": "message_stop"}))
    return b"".join(out)


def _block_events(block: Json) -> tuple[Json, list[Json]]:
    """A block's `content_block_start` payload and its deltas (B.1 "Streaming grammar").

    Text, thinking and tool_use start empty and are filled by deltas; every
    other kind (redacted thinking, server tool blocks) starts complete.
    """
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": block["text"]}]
    if kind == "thinking":
        deltas = []
        if block.get("thinking"):
            deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        return {"type": "thinking", "thinking": "", "signature": ""}, deltas
    if kind == "tool_use":
        start: Json = {
            "type": "tool_use",
            "id": block.get("id"),
            "name": block.get("name"),
            "input": {},
        }
        partial = orjson.dumps(block.get("input") or {}).decode()
        return start, [{"type": "input_json_delta", "partial_json": partial}]
    return block, []


def _is_empty_text(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "text" and not block.get("text")
