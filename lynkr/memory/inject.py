"""Where retrieved memories go in a request: after its last `cache_control` breakpoint.

A provider caches a request's prefix up to each breakpoint; every byte before
the last one must be what the previous request had there, or the cache is
lost. Breakpoints sit in `tools`, `system` and messages, in that order, and
the newest turn is the last user message. So the memories are appended as one
text block at the **end of the last user message**, only when that message is
a person's new prompt (not tool results alone): the next request carries that
message again without the block (Claude Code resends history as it sent it),
which differs only after that request's own last breakpoint, never before.

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
    """The text the person typed in the newest turn, or "" when the last message is not theirs."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ""
    return human_text(messages[-1])


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
    if not hits or not newest_prompt(body):
        return None
    messages = list(body["messages"])
    last = dict(messages[-1])
    content = last["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    last["content"] = [*blocks, memory_block(hits)]
    messages[-1] = last
    return {**body, "messages": messages}
