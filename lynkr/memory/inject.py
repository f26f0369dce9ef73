"""Where retrieved memories go in a request: after its last `cache_control` breakpoint.

A provider caches a request's prefix up to each breakpoint; every byte before
the last one must be what the previous request had there, or the cache is
lost. Breakpoints sit in `tools`, `system` and messages, in that order, and
the newest turn is the last user message (Claude Code may follow it with
mid-conversation `system` messages). So the memories are appended as one text
block at the **end of the last user message**, only when that message is a
person's new prompt (not tool results alone) and no breakpoint follows it: the
next request carries that message again without the block (Claude Code resends
history as it sent it), which differs only after that request's own last
breakpoint, never before.

`with_memories` is pure: it returns the new body and leaves the one given alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lynkr.memory.extract import human_text
from lynkr.memory.model import Hit

__all__ = ["MARKER", "memory_block", "newest_prompt", "with_memories"]

MARKER = "lynkr-memory"


def newest_prompt(body: Mapping[str, Any]) -> str:
    """The text the person typed in the newest turn, or "" when the newest turn is not theirs."""
    at = _newest_user(body)
    return "" if at is None else human_text(body["messages"][at])


def _newest_user(body: Mapping[str, Any]) -> int | None:
    """The index of the last user message when only `system` messages follow it (Claude
    Code sends mid-conversation system messages after the person's prompt)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for at in range(len(messages) - 1, -1, -1):
        message = messages[at]
        role = message.get("role") if isinstance(message, Mapping) else None
        if role == "user":
            return at
        if role != "system":
            return None
    return None


def _has_breakpoint(message: Any) -> bool:
    content = message.get("content") if isinstance(message, Mapping) else None
    return isinstance(content, list) and any(
        isinstance(block, Mapping) and "cache_control" in block for block in content
    )


def memory_block(hits: Sequence[Hit]) -> dict[str, Any]:
    """The text block that carries `hits` to the model."""
    lines = [
        f'<system-reminder source="{MARKER}">',
        "Notes lynkr kept from earlier sessions in this project. Use them when they are "
        "relevant; they may be out of date, and what the user says now wins.",
    ]
    lines += [f"- [{hit.memory.type}] {hit.memory.content}" for hit in hits]
    lines.append("</system-reminder>")
    return {"type": "text", "text": "\n".join(lines)}


def with_memories(body: Mapping[str, Any], hits: Sequence[Hit]) -> dict[str, Any] | None:
    """`body` with `hits` appended to its last user message; None when nothing is to be added."""
    at = _newest_user(body)
    if not hits or at is None or not human_text(body["messages"][at]):
        return None
    messages = list(body["messages"])
    if any(_has_breakpoint(message) for message in messages[at + 1 :]):
        return None  # a breakpoint after the prompt: any addition would fall before it
    prompt = dict(messages[at])
    content = prompt["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    prompt["content"] = [*blocks, memory_block(hits)]
    messages[at] = prompt
    return {**body, "messages": messages}
