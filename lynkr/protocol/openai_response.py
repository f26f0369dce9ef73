"""OpenAI Chat Completions response → Anthropic Message (docs/protocol.md B.4).

`to_anthropic_message` maps one non-streamed completion. The pieces the
stream translator shares with it — the stop-reason rule, the usage mapping,
tool-call argument parsing and generated ids — live here too, so both paths
answer alike.

The llama.cpp context-full rule (B.4): llama.cpp reports `finish_reason:
"length"` both when the answer reached `max_tokens` and when the context
window filled up. With `context_full_on_length` (set for llama.cpp)
`stop_reason` says which it was; see `stop_reason`. That does not spare a
resend: Claude Code sends "Output token limit hit. Resume directly…" after
either stop reason (A.8). It makes the final message true: that the context
window is full, not that the answer passed an output maximum it never reached.
"""

from __future__ import annotations

import logging
import secrets
import string
from typing import Any

import orjson

from lynkr.errors import UpstreamError

__all__ = ["to_anthropic_message"]

log = logging.getLogger(__name__)

_ALPHABET = (string.ascii_letters + string.digits).encode()
# Random bytes below 248 (4 × 62) map evenly onto the 62 characters; the rest are dropped.
_TO_ALPHABET = bytes(_ALPHABET[byte % 62] if byte < 248 else 0 for byte in range(256))
_UNEVEN = bytes(range(248, 256))

Json = dict[str, Any]


def new_id(prefix: str) -> str:
    """A fresh id such as `toolu_…` (24 alphanumerics; case 25 wants `^toolu_[A-Za-z0-9]{20,}$`)."""
    while True:  # 32 bytes leave fewer than 24 about once in two million draws
        chars = secrets.token_bytes(32).translate(_TO_ALPHABET, _UNEVEN)
        if len(chars) >= 24:
            return prefix + chars[:24].decode()


def to_anthropic_message(
    response: Json,
    *,
    model: str,
    context_full_on_length: bool = False,
    requested_max_tokens: int | None = None,
) -> Json:
    """The Anthropic Message for a completion (B.4, golden cases 22–28).

    `model` is the name the client asked for, echoed (B.4 row `model`).
    `requested_max_tokens` is the limit the upstream was actually sent (after
    the dialect's clamp); see `stop_reason`. Only the first choice counts
    (lynkr never asks for `n` > 1).

    Raises `UpstreamError` for a 200 answer that is really an error: a
    top-level `error` object, or `finish_reason: "error"` (OpenRouter).
    """
    error = response.get("error")
    if error is not None:
        raise UpstreamError(f"the provider answered with an error: {error_message(error)}")
    choices = response.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    if finish == "error":
        raise UpstreamError("the provider reported an error while generating the answer")
    content, refused = _content(message)
    usage = anthropic_usage(response.get("usage"))
    reason = (
        "refusal"
        if refused
        else stop_reason(
            finish,
            tool_calls=any(block["type"] == "tool_use" for block in content),
            output_tokens=usage["output_tokens"] if response.get("usage") else None,
            context_full_on_length=context_full_on_length,
            requested_max_tokens=requested_max_tokens,
        )
    )
    upstream_id = response.get("id")
    return {
        "id": f"msg_{upstream_id}"
        if isinstance(upstream_id, str) and upstream_id
        else new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _content(message: Json) -> tuple[list[Json], bool]:
    """The content blocks, in B.4's order, and whether the model refused.

    Thinking (`reasoning_content` or `reasoning`) first, then the content
    (a string, or Databricks-style parts), the refusal text, the tool calls.
    Empty texts make no block (A.6 #7: never create an empty text block).
    """
    blocks: list[Json] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    content = message.get("content")
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        blocks.extend(block for part in content if (block := content_part(part)) is not None)
    refusal = message.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if refused:
        blocks.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        blocks.append(_tool_use(call))
    return blocks, refused


def content_part(part: Any) -> Json | None:
    """One part of an array `content` (B.4 rows "content as an array", Databricks reasoning).

    `text` parts become text blocks; `reasoning` parts become thinking, their
    `summary[].text` joined with "" and their `signature` kept. Spec silent:
    other part kinds, and empty ones, are skipped.
    """
    if not isinstance(part, dict):
        return None
    if part.get("type") == "text" and isinstance(part.get("text"), str) and part["text"]:
        return {"type": "text", "text": part["text"]}
    if part.get("type") == "reasoning":
        thinking = reasoning_text(part)
        signature = part.get("signature")
        if thinking or signature:
            sig = signature if isinstance(signature, str) else ""
            return {"type": "thinking", "thinking": thinking, "signature": sig}
    return None


def reasoning_text(part: Json) -> str:
    """The text of a Databricks `reasoning` part: its `summary[].text` pieces joined."""
    summary = part.get("summary")
    items = summary if isinstance(summary, list) else ()
    return "".join(
        s["text"] for s in items if isinstance(s, dict) and isinstance(s.get("text"), str)
    )


def _tool_use(call: Any) -> Json:
    """B.4 row `tool_calls[]` (case 25): a missing or empty id gets a generated `toolu_…`."""
    call = call if isinstance(call, dict) else {}
    function = call.get("function") or {}
    call_id = call.get("id")
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else new_id("toolu_"),
        "name": str(function.get("name") or ""),
        "input": parse_arguments(function.get("arguments")),
    }


def parse_arguments(arguments: Any) -> Json:
    """A tool call's `arguments` as an input object (B.4 row `tool_calls[]`, case 25).

    `""` or null is `{}`; invalid JSON is `{}` and a logged warning. Spec
    silent: JSON that is not an object is treated as invalid, and an
    object sent in place of the JSON string (some compatible servers) is
    taken as is.
    """
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or arguments == "":
        return {}
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str | bytes) else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    log.warning("tool call arguments are not a JSON object, sent as {}: %.200r", arguments)
    return {}


def stop_reason(
    finish_reason: Any,
    *,
    tool_calls: bool,
    output_tokens: int | None,
    context_full_on_length: bool = False,
    requested_max_tokens: int | None = None,
) -> str:
    """Anthropic's `stop_reason` for an OpenAI `finish_reason` (B.4 rows; cases 24, 27).

    `stop` (or none at all) is `end_turn`, or `tool_use` when the answer has
    tool calls (Ollama reports `stop` with calls); `tool_calls` and
    `function_call` are `tool_use`; `length` is `max_tokens`;
    `content_filter` is `refusal`. A stop sequence cannot be told apart from
    `stop` (B.4 row "stop sequence hit"). Spec silent: `tool_calls` without
    any call is `end_turn`, and unknown reasons are treated as `stop`.

    The context-full rule (B.4): with `context_full_on_length`, `length`
    means the *context* filled up when the upstream reported fewer output
    tokens than the limit it was sent — a generation stopped by its own limit
    reaches it. Then the answer is `model_context_window_exceeded`: Claude
    Code resumes as after `max_tokens`, then ends with "The model has reached
    its context window limit" (A.8) instead of an output-limit error.
    With either number unknown `length` stays `max_tokens`.
    """
    if finish_reason == "content_filter":
        return "refusal"
    if finish_reason == "length":
        if _context_full(output_tokens, context_full_on_length, requested_max_tokens):
            return "model_context_window_exceeded"
        return "max_tokens"
    return "tool_use" if tool_calls else "end_turn"


def _context_full(output_tokens: int | None, enabled: bool, requested: int | None) -> bool:
    return (
        enabled
        and output_tokens is not None
        and requested is not None
        and output_tokens < requested
    )


def anthropic_usage(usage: Any) -> Json:
    """B.4 rows `usage` (cases 22, 28): `input_tokens` = P − C, cache reads = C, writes 0.

    P is `prompt_tokens`, C is `prompt_tokens_details.cached_tokens`. Spec
    silent: DeepSeek's `prompt_cache_hit_tokens` counts as C when the
    standard field is absent; missing usage is all zeros.
    """
    usage = usage if isinstance(usage, dict) else {}
    prompt = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    cached = cached or _count(usage.get("prompt_cache_hit_tokens"))
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": _count(usage.get("completion_tokens")),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def error_message(error: Any) -> str:
    """The message of an upstream `error` value: an object's `message`, or the value as text."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(error)
