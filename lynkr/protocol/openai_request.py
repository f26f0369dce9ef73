"""Anthropic Messages request → OpenAI Chat Completions request (docs/protocol.md B.3).

`to_openai_request` is the whole of B.3's mapping table, one small function
per row, run over plain data. The upstream's quirks come from an
`OpenAIDialect` decided from config, never guessed from model names. The
client's body is never modified.

Where B.3 is silent, the choice made is written in the docstring of the
function that makes it and marked "Spec silent".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from lynkr.protocol.anthropic import without_billing_header
from lynkr.protocol.openai_dialect import OpenAIDialect
from lynkr.protocol.openai_tools import tool_fields

__all__ = ["OpenAIDialect", "to_openai_request"]

PDF_PLACEHOLDER = "[PDF document omitted: not supported by upstream]"
IMAGE_PLACEHOLDER = "[image omitted: not supported by upstream]"
TOOL_IMAGES_INTRO = "Images from tool results:"

_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_SENT_KINDS = {"image", "document", "search_result", "tool_use", "tool_result"}

Json = dict[str, Any]


def to_openai_request(body: Json, dialect: OpenAIDialect) -> Json:
    """The Chat Completions body for an Anthropic Messages `body` (B.3, golden cases 1–21).

    Fields B.3 drops (`metadata`, `context_management`, `service_tier`,
    `container`, `mcp_servers`, `cache_control`) are dropped simply by never
    being copied.
    """
    out: Json = {}
    if dialect.model is not None:
        out["model"] = dialect.model
    out["messages"] = _messages(body, dialect)
    out.update(_sampling(body, dialect))
    if body.get("stream") is True:
        out["stream"] = True
        if dialect.include_usage:
            out["stream_options"] = {"include_usage": True}
    out.update(tool_fields(body, dialect))
    out.update(_reasoning(body, dialect))
    response_format = _response_format(body.get("output_config"))
    if response_format is not None:
        out["response_format"] = response_format
    return out


# --- sampling and limits --------------------------------------------------------------------


def _sampling(body: Json, dialect: OpenAIDialect) -> Json:
    """B.3 rows `max_tokens`, `temperature`/`top_p`, `top_k`, `stop_sequences`.

    `max_tokens` is clamped to the dialect's cap and sent under the dialect's
    field name. `top_k` is kept only for llama.cpp, Ollama and OpenRouter.
    Only the first `max_stop_sequences` stops are sent (4 on OpenAI/Azure).
    Spec silent: an empty `stop_sequences` sends no `stop`.
    """
    out: Json = {}
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int):
        if dialect.max_output_tokens is not None:
            max_tokens = min(max_tokens, dialect.max_output_tokens)
        out[dialect.max_tokens_field] = max_tokens
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if dialect.keep_top_k and body.get("top_k") is not None:
        out["top_k"] = body["top_k"]
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops:
        out["stop"] = stops[: dialect.max_stop_sequences]
    return out


def _reasoning(body: Json, dialect: OpenAIDialect) -> Json:
    """B.3 rows `thinking` and `output_config.effort` → `reasoning_effort` (case 19).

    Only for reasoning models. `enabled` maps its budget (< 4096 low,
    < 16384 medium, else high); `disabled` sends nothing. Spec silent: an
    `enabled` without a budget counts as medium; an effort with `thinking`
    absent is mapped like `adaptive`; an unknown effort sends nothing.
    """
    if not dialect.reasoning:
        return {}
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return {}
    if kind == "enabled":
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if not isinstance(budget, int):
            return {"reasoning_effort": "medium"}
        effort = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
        return {"reasoning_effort": effort}
    config = body.get("output_config")
    wanted = config.get("effort") if isinstance(config, dict) else None
    mapped = _EFFORT.get(wanted) if isinstance(wanted, str) else None
    return {"reasoning_effort": mapped} if mapped else {}


def _response_format(config: Any) -> Json | None:
    """B.3 row `output_config.format` → `response_format` json_schema (case 9, title requests)."""
    fmt = config.get("format") if isinstance(config, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = {"name": "output", "schema": fmt.get("schema", {}), "strict": True}
    return {"type": "json_schema", "json_schema": schema}


# --- messages -------------------------------------------------------------------------------


def _messages(body: Json, dialect: OpenAIDialect) -> list[Json]:
    """The OpenAI `messages`: the top system message, then each turn converted.

    Pipeline: fold or keep role:"system" messages (A.6 #1), merge consecutive
    same-role turns (B.3 row "consecutive same-role messages"), then convert
    turn by turn; a user turn needs the tool-call order of the assistant turn
    before it (A.6 #5). Spec silent: messages with any other role are
    dropped (request validation rejects them earlier).
    """
    out: list[Json] = []
    system = _system_message(body.get("system"), dialect)
    if system is not None:
        out.append(system)
    turns = _normalise(body.get("messages"), dialect)
    if dialect.mid_conversation_system == "convert":
        turns = _fold_system_messages(turns)
    call_order: list[str] = []
    names: dict[str, str] = {}
    for turn in _merge_same_role(turns):
        role, blocks = turn.role, turn.blocks
        if role == "assistant":
            calls = [b for b in blocks if _kind(b) == "tool_use"]
            call_order = [call.get("id", "") for call in calls]
            names.update((call.get("id", ""), call.get("name", "")) for call in calls)
            out.append(_assistant(blocks, dialect))
        elif role == "user":
            out.extend(_user(blocks, call_order, names, dialect))
            call_order = []
        elif role == "system":
            out.append(_kept_system(blocks, dialect))
    return out


@dataclass(slots=True)
class _Turn:
    """A message as (role, content blocks); string content becomes one text block."""

    role: str
    blocks: list[Any]


def _normalise(messages: Any, dialect: OpenAIDialect) -> list[_Turn]:
    """The client's messages as `_Turn`s holding only what is sent upstream.

    String content becomes a text block (A.6 #3: mixed content forms). Empty
    text (A.6 #7), thinking (unless `reasoning_history`), redacted thinking
    and server-tool blocks are removed here, and turns left empty with them,
    so the same-role merge sees the turns that really remain. Spec silent:
    server-tool blocks in history (`server_tool_use`, `*_tool_result`) mean
    nothing to the upstream and are dropped.
    """
    turns: list[_Turn] = []
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks = [b for b in content if _sendable(b, dialect)] if isinstance(content, list) else []
        if blocks:
            turns.append(_Turn(str(message.get("role")), blocks))
    return turns


def _sendable(block: Any, dialect: OpenAIDialect) -> bool:
    kind = _kind(block)
    if kind == "thinking":
        return dialect.reasoning_history and bool(block.get("thinking"))
    return kind in _SENT_KINDS or bool(_text(block))


def _system_message(system: Any, dialect: OpenAIDialect) -> Json | None:
    """B.3 rows `system` string / text blocks (case 2).

    Blocks are joined with "\\n\\n", the billing-header block (A.4) dropped.
    Spec silent: the billing header is also dropped as the first line of a
    string `system`; empty blocks are skipped; an empty result sends no
    system message. With `keep_cache_control` and a block carrying one, the
    content stays a parts array so each part keeps its `cache_control`.
    """
    system = without_billing_header(system)
    if isinstance(system, str):
        blocks: list[Any] = [{"type": "text", "text": system}]
    else:
        blocks = system if isinstance(system, list) else []
    texts = [block for block in blocks if _text(block)]
    if not texts:
        return None
    if dialect.keep_cache_control and any("cache_control" in block for block in texts):
        return {"role": dialect.system_role, "content": [_text_part(b, dialect) for b in texts]}
    return {"role": dialect.system_role, "content": "\n\n".join(_text(b) for b in texts)}


def _fold_system_messages(turns: list[_Turn]) -> list[_Turn]:
    """B.3 row "message role:system (anywhere)", default mode (cases 3, 15).

    The text, wrapped as `<system-reminder>\\n…\\n</system-reminder>`, is
    (1) appended to the previous turn when it is a user turn (its text is
    joined with "\\n" later, and text after tool results becomes the user
    message after the tool messages); else (2) prepended to the next turn
    when it is a user turn; else (3) a user turn of its own, where the
    system message stood.
    """
    out: list[_Turn] = []
    pending: list[Any] = []
    for turn in turns:
        if turn.role == "system":
            reminder = _reminder(turn.blocks)
            if out and out[-1].role == "user":
                out[-1].blocks.append(reminder)
            else:
                pending.append(reminder)
            continue
        if pending:
            if turn.role == "user":
                turn.blocks[0:0] = pending
            else:
                out.append(_Turn("user", pending))
            pending = []
        out.append(turn)
    if pending:
        out.append(_Turn("user", pending))
    return out


def _reminder(blocks: list[Any]) -> Json:
    text = "\n".join(_text(block) for block in blocks)
    return {"type": "text", "text": f"<system-reminder>\n{text}\n</system-reminder>"}


def _merge_same_role(turns: list[_Turn]) -> list[_Turn]:
    """Consecutive turns with one role become one turn (B.3; case 5).

    Their blocks are concatenated, as the Anthropic API itself combines such
    turns, so each turn's own rule (user text joined with "\\n", assistant
    text with "") then applies across them, and tool results split over two
    user turns are still reordered together.
    """
    merged: list[_Turn] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1].blocks.extend(turn.blocks)
        else:
            merged.append(_Turn(turn.role, list(turn.blocks)))
    return merged


def _kept_system(blocks: list[Any], dialect: OpenAIDialect) -> Json:
    """A role:"system" message kept in place (option "keep", case 4), its texts joined with "\\n".

    Spec silent: it takes the dialect's `system_role`, like the top message.
    """
    return {"role": dialect.system_role, "content": "\n".join(_text(b) for b in blocks)}


# --- assistant turns ------------------------------------------------------------------------


def _assistant(blocks: list[Any], dialect: OpenAIDialect) -> Json:
    """B.3 rows assistant text, tool_use, thinking (cases 11, 16, 17).

    Texts are joined with "" (empty ones were removed by `_normalise`);
    `content` is null when there is none but tool calls. Thinking reaches
    here only with `reasoning_history`: its texts, joined with "\\n", become
    `reasoning_content` (never `content`). Without tool support the calls
    become text lines after the text (`_call_as_text`).
    """
    texts = [_text(b) for b in blocks if _text(b)]
    calls = [b for b in blocks if _kind(b) == "tool_use"]
    if calls and not dialect.supports_tools:
        texts = ["\n".join(["".join(texts), *map(_call_as_text, calls)]).lstrip("\n")]
        calls = []
    thinking = [b["thinking"] for b in blocks if _kind(b) == "thinking"]
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = [_tool_call(call) for call in calls]
    if thinking:
        message["reasoning_content"] = "\n".join(thinking)
    return message


def _tool_call(block: Json) -> Json:
    function = {"name": block.get("name", ""), "arguments": _arguments(block.get("input"))}
    return {"id": block.get("id", ""), "type": "function", "function": function}


def _arguments(tool_input: Any) -> str:
    """Compact JSON of the input, or the raw text CC kept for unparsable input (A.6 #8, case 17)."""
    if isinstance(tool_input, dict):
        unparsed = tool_input.get("__unparsedToolInput")
        raw = unparsed.get("raw") if isinstance(unparsed, dict) else None
        if isinstance(raw, str):
            return raw
    return orjson.dumps(tool_input if tool_input is not None else {}).decode()


def _call_as_text(block: Json) -> str:
    """Spec silent: a tool call flattened for an upstream without tools."""
    return f"[Called tool {block.get('name', '')} with input {_arguments(block.get('input'))}]"


# --- user turns -----------------------------------------------------------------------------


def _user(
    blocks: list[Any], call_order: list[str], names: dict[str, str], dialect: OpenAIDialect
) -> list[Json]:
    """One user turn: its tool messages, then at most one user message (cases 11–15).

    Tool messages come first, in the assistant's tool_calls order (A.6 #5);
    results for unknown ids follow in the order given. After them one user
    message holds the images taken out of tool results (introduced by
    "Images from tool results:") and then every other block of the turn in
    order. Spec silent: the two are one message rather than two user
    messages in a row, which strict-alternation templates reject.
    """
    results = [b for b in blocks if _kind(b) == "tool_result"]
    rest = [b for b in blocks if _kind(b) != "tool_result"]
    if not dialect.supports_tools:
        rest = [_result_as_text(b, names, dialect) for b in results] + rest
        results = []
    rank = {tool_id: at for at, tool_id in enumerate(call_order)}
    results.sort(key=lambda b: rank.get(b.get("tool_use_id"), len(rank)))
    out: list[Json] = []
    images: list[Json] = []
    for result in results:
        text, found = _result_content(result, dialect)
        images.extend(found)
        out.append(_tool_message(result, text, dialect))
    parts = [{"type": "text", "text": TOOL_IMAGES_INTRO}, *images] if images else []
    parts.extend(part for block in rest for part in _user_parts(block, dialect))
    if parts:
        out.append({"role": "user", "content": _user_content(parts)})
    return out


def _tool_message(result: Json, text: str, dialect: OpenAIDialect) -> Json:
    """B.3 row `tool_result` → `{role:"tool", tool_call_id, content}`.

    With `keep_cache_control` a result carrying `cache_control` (CC puts its
    moving breakpoint there, A.4) sends its content as one text part with it.
    """
    content: Any = text
    if dialect.keep_cache_control and "cache_control" in result:
        content = [{"type": "text", "text": text, "cache_control": result["cache_control"]}]
    return {"role": "tool", "tool_call_id": result.get("tool_use_id", ""), "content": content}


def _result_content(result: Json, dialect: OpenAIDialect) -> tuple[str, list[Json]]:
    """B.3 rows tool_result content string / array / `is_error` / empty (cases 13, 14).

    Array parts are joined with "\\n"; each image leaves `[image]` and is
    returned for the user message after the tool messages (only when the
    upstream takes images). Empty content becomes the dialect's
    `empty_tool_result`; errors are prefixed "Error: ". Spec silent: an
    error with no content at all reads "Error".
    """
    content = result.get("content")
    images: list[Json] = []
    if isinstance(content, list):
        texts: list[str] = []
        for block in content:
            if _kind(block) == "image":
                texts.append("[image]")
                if dialect.supports_images:
                    images.append(_image_part(block))
            else:
                texts.extend(_plain_texts(block))
        content = "\n".join(texts)
    text = content if isinstance(content, str) else ""
    text = text or dialect.empty_tool_result
    if result.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return text, images


def _result_as_text(result: Json, names: dict[str, str], dialect: OpenAIDialect) -> Json:
    """Spec silent: a tool result flattened to user text for an upstream without tools."""
    text, _ = _result_content(result, dialect)
    name = names.get(result.get("tool_use_id", ""), "")
    return {"type": "text", "text": f"[Result of tool {name}]\n{text}"}


def _user_parts(block: Json, dialect: OpenAIDialect) -> list[Json]:
    """B.3 rows user text, image, document (cases 6, 7).

    Spec silent: a URL or file-id image without image support, and a PDF by
    URL or file id, become their placeholders; other block kinds (thinking
    and such) are not user content and are dropped.
    """
    kind = _kind(block)
    if kind == "text":
        return [_text_part(block, dialect)] if _text(block) else []
    if kind == "image":
        if not dialect.supports_images:
            return [{"type": "text", "text": IMAGE_PLACEHOLDER}]
        return [_image_part(block)]
    if kind == "document":
        return [_document_part(block, dialect)]
    return [{"type": "text", "text": text} for text in _plain_texts(block)]


def _image_part(block: Json) -> Json:
    """An image as `image_url`: base64 as a data URL, a URL as is (B.3 row "user with image(s)").

    Spec silent: a `file` source (an Anthropic Files API id, meaningless
    upstream) is sent as its id in the URL, which the upstream rejects
    clearly rather than the model silently missing the image.
    """
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    else:
        url = source.get("url") or source.get("file_id") or ""
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: Json, dialect: OpenAIDialect) -> Json:
    """B.3 row "document": a base64 PDF as a `file` part where the upstream takes one (OpenAI,
    OpenRouter), text documents as text, anything else the placeholder."""
    source = block.get("source") or {}
    if source.get("type") == "base64" and dialect.file_parts:
        data = f"data:{source.get('media_type', 'application/pdf')};base64,{source.get('data', '')}"
        return {"type": "file", "file": {"filename": "document.pdf", "file_data": data}}
    return {"type": "text", "text": _document_text(source)}


def _document_text(source: Json) -> str:
    """A document's text (`text` and `content` sources), else the PDF placeholder."""
    kind = source.get("type")
    if kind == "text":
        return str(source.get("data", ""))
    if kind == "content":
        return "\n".join(_plain_texts_of(source.get("content")))
    return PDF_PLACEHOLDER


def _text_part(block: Json, dialect: OpenAIDialect) -> Json:
    part: Json = {"type": "text", "text": _text(block)}
    if dialect.keep_cache_control and "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _user_content(parts: list[Json]) -> str | list[Json]:
    """B.3 row "user text blocks only": plain text parts become one string joined with "\\n"."""
    if all(set(part) == {"type", "text"} and part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _plain_texts(block: Any) -> list[str]:
    """The texts of a text, text-document or search_result block (tool_result content)."""
    kind = _kind(block)
    if kind == "text":
        return [_text(block)] if _text(block) else []
    if kind == "search_result":
        return _plain_texts_of(block.get("content"))
    if kind == "document":
        return [_document_text(block.get("source") or {})]
    return []


def _plain_texts_of(blocks: Any) -> list[str]:
    items: Iterable[Any] = blocks if isinstance(blocks, list) else ()
    return [text for block in items for text in _plain_texts(block)]


def _kind(block: Any) -> Any:
    return block.get("type") if isinstance(block, dict) else None


def _text(block: Any) -> str:
    if _kind(block) == "text" and isinstance(block.get("text"), str):
        text: str = block["text"]
        return text
    return ""
