"""Optional repair of tool calls a model wrote as text (`tool_text_repair`, off by default).

Small local models often answer a tool-using request with the call spelled
out in the text instead of `tool_calls`: `{"name": "Bash", "arguments":
{…}}`, the same with `parameters`, wrapped in `<tool_call>…</tool_call>`
(Hermes/Qwen templates) or in a ```json fence, or a list of such objects.
Claude Code would print that text and stop. `repair_text_tool_calls` turns
such calls into `tool_use` blocks — only for tools the request offered — and
keeps the rest of the text as prose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from lynkr.protocol.openai_response import new_id

__all__ = ["repair_text_tool_calls"]

Json = dict[str, Any]

# A wrapper whose inside may be a call: a Hermes/Qwen `<tool_call>` tag or a Markdown fence.
_WRAPPED = re.compile(
    r"<tool_call>\s*(?P<tag>.*?)\s*</tool_call>|```[\w-]*[ \t]*\n?(?P<fence>.*?)```", re.DOTALL
)
# Where a call can start: an object with a key, or a list of objects.
_OPENER = re.compile(r'\{\s*"|\[\s*\{')
_ARGUMENT_KEYS = ("arguments", "parameters", "input", "args")
_KEPT_KINDS = {"text", "thinking", "redacted_thinking"}
_DECODER = json.JSONDecoder()


def repair_text_tool_calls(message: Json, tool_names: Collection[str]) -> Json:
    """`message` with the tool calls in its text turned into `tool_use` blocks.

    Applies only to a message whose content is text (and thinking). Each
    recognised call — a known tool name with an object of arguments — becomes
    a `tool_use` block with a generated `toolu_…` id, after the remaining
    prose (thinking blocks stay first), and `stop_reason` becomes `tool_use`.
    When nothing is recognised (no JSON, invalid JSON, unknown names) the
    same `message` object is returned unchanged.
    """
    content = message.get("content")
    if not isinstance(content, list) or not all(_kind(b) in _KEPT_KINDS for b in content):
        return message
    text = "".join(b.get("text", "") for b in content if _kind(b) == "text")
    calls, prose = _extract(text, set(tool_names))
    if not calls:
        return message
    blocks = [b for b in content if _kind(b) != "text"]
    if prose:
        blocks.append({"type": "text", "text": prose})
    blocks.extend(calls)
    return {**message, "content": blocks, "stop_reason": "tool_use", "stop_sequence": None}


def _extract(text: str, names: set[str]) -> tuple[list[Json], str]:
    """The calls found in `text`, in order of appearance, and the text without them.

    Wrapped calls (tags, fences) are taken first, the whole wrapper removed;
    then bare JSON objects and lists anywhere in the remaining prose.
    """
    found: list[tuple[int, int, list[Json]]] = []
    for match in _WRAPPED.finditer(text):
        inner = match["tag"] if match["tag"] is not None else match["fence"]
        calls = _calls_in(_loads(inner.strip()), names)
        if calls:
            found.append((match.start(), match.end(), calls))
    found.extend(_bare_calls(text, names, [(start, end) for start, end, _ in found]))
    found.sort(key=lambda item: item[0])
    prose, at = [], 0
    for start, end, _ in found:
        prose.append(text[at:start])
        at = end
    prose.append(text[at:])
    tidy = re.sub(r"\n{3,}", "\n\n", "".join(prose)).strip()
    return [call for _, _, calls in found for call in calls], tidy


def _bare_calls(
    text: str, names: set[str], taken: list[tuple[int, int]]
) -> list[tuple[int, int, list[Json]]]:
    """Calls written as bare JSON outside the `taken` spans.

    JSON that parses but is not a call is skipped whole, so each character
    is decoded a bounded number of times.
    """
    found: list[tuple[int, int, list[Json]]] = []
    at = 0
    while (match := _OPENER.search(text, at)) is not None:
        start = match.start()
        span = next(((s, e) for s, e in taken if s <= start < e), None)
        if span is not None:
            at = span[1]
            continue
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than json allows
            at = start + 1
            continue
        calls = _calls_in(value, names)
        if calls:
            found.append((start, end, calls))
        at = end
    return found


def _calls_in(value: Any, names: set[str]) -> list[Json] | None:
    """The calls a JSON value holds: one call object, or a non-empty list of only calls."""
    items = value if isinstance(value, list) else [value]
    calls = [_call(item, names) for item in items]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def _call(value: Any, names: set[str]) -> Json | None:
    """A `tool_use` block for `{"name", "arguments"|"parameters"|"input"|"args"}`, else None.

    The OpenAI shape `{"type":"function","function":{…}}` is unwrapped;
    arguments given as a JSON string are parsed. The name must be known.
    """
    if not isinstance(value, dict):
        return None
    if "name" not in value and isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    key = next((k for k in _ARGUMENT_KEYS if k in value), None)
    if not isinstance(name, str) or name not in names or key is None:
        return None
    arguments = value[key]
    if isinstance(arguments, str):
        arguments = _loads(arguments)
    if not isinstance(arguments, dict):
        return None
    return {"type": "tool_use", "id": new_id("toolu_"), "name": name, "input": arguments}


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _kind(block: Any) -> Any:
    return block.get("type") if isinstance(block, dict) else None
