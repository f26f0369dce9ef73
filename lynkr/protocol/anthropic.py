"""Light rewriting of a client's Messages request for an Anthropic-format upstream.

docs/protocol.md B.9 ("Rewrites for any Anthropic-format upstream") and golden
case 48: Anthropic itself, Azure AI Foundry and Databricks-Claude receive the
client's request nearly as sent. `prepare_request` applies only the rewrites
B.9 lists and reports whether it changed anything, so the caller can forward
the client's raw bytes when it did not. Everything else (thinking blocks and
their signatures, `cache_control`, tool_use ids, fields and block types this
module does not know) passes through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

__all__ = [
    "BILLING_PREFIX",
    "UpstreamRewrite",
    "anthropic_tool_choice",
    "filter_betas",
    "prepare_request",
    "rewrite_model_in_message",
    "text_of",
    "without_billing_header",
]

BILLING_PREFIX = "x-anthropic-billing-header:"
_MID_SYSTEM_BETA = "mid-conversation-system-*"
_CONTEXT_MANAGEMENT_BETA = "context-management-*"


def filter_betas(
    values: Sequence[str], *, allow: Sequence[str] | None, drop: Sequence[str]
) -> list[str]:
    """The `anthropic-beta` values to forward upstream (B.9 "keep only an allowlist").

    `values` are header values as received: comma lists, possibly repeated
    headers (B.1). Names are trimmed, kept in order, de-duplicated. `allow`
    None means every name not in `drop`; both hold names or fnmatch globs
    (`context-management-*`), and `drop` wins over `allow`.
    """
    kept: dict[str, None] = {}
    for value in values:
        for item in value.split(","):
            name = item.strip()
            if name and not _matches(name, drop) and (allow is None or _matches(name, allow)):
                kept[name] = None
    return list(kept)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


@dataclass(frozen=True)
class UpstreamRewrite:
    """What `prepare_request` does for one upstream.

    `model`: the upstream's deployment or endpoint name (None keeps the
    client's). `betas`: the betas forwarded upstream (after `filter_betas`);
    the "auto" options read them. `mid_conversation_system`: "keep"
    role:"system" messages, "convert" them as B.3 does, or "auto": keep them
    only when a `mid-conversation-system-*` beta is forwarded.
    `drop_context_management`: "auto" drops `context_management` unless a
    `context-management-*` beta is forwarded.
    """

    model: str | None
    betas: tuple[str, ...]
    strip_billing_header: bool = True
    mid_conversation_system: Literal["auto", "keep", "convert"] = "auto"
    strip_empty_text: bool = True
    drop_context_management: Literal["auto", "keep", "drop"] = "auto"

    @property
    def converts_system_messages(self) -> bool:
        if self.mid_conversation_system == "auto":
            return not _matches_any(self.betas, _MID_SYSTEM_BETA)
        return self.mid_conversation_system == "convert"

    @property
    def drops_context_management(self) -> bool:
        if self.drop_context_management == "auto":
            return not _matches_any(self.betas, _CONTEXT_MANAGEMENT_BETA)
        return self.drop_context_management == "drop"


def _matches_any(names: Sequence[str], pattern: str) -> bool:
    return any(fnmatchcase(name, pattern) for name in names)


def prepare_request(body: dict[str, Any], rewrite: UpstreamRewrite) -> bool:
    """Apply B.9's rewrites to `body` in place; return whether anything changed.

    In order: set `model`; drop the billing-header system block; strip empty
    text blocks; convert role:"system" messages; drop `context_management`.
    Every step reports a change only when it made one, so an unchanged body
    can be forwarded byte for byte.
    """
    changed = False
    if rewrite.model is not None and body.get("model") != rewrite.model:
        body["model"] = rewrite.model
        changed = True
    if rewrite.strip_billing_header:
        changed |= _strip_billing_header(body)
    if rewrite.strip_empty_text:
        changed |= _strip_empty_text(body)
    if rewrite.converts_system_messages:
        changed |= _convert_system_messages(body)
    if rewrite.drops_context_management and "context_management" in body:
        del body["context_management"]
        changed = True
    return changed


def rewrite_model_in_message(body: dict[str, Any], model: str) -> None:
    """Set a non-streaming response's `model` to the name the client asked for (B.9)."""
    body["model"] = model


def _strip_billing_header(body: dict[str, Any]) -> bool:
    """Drop the `x-anthropic-billing-header:` system block (A.4, B.3, B.9).

    It changes between conversations and would spoil the upstream's prompt
    cache. In a string `system` it is the first line. A `system` left empty
    is removed.
    """
    system = body.get("system")
    kept = without_billing_header(system)
    return kept is not system and _set_system(body, kept)


def without_billing_header(system: Any) -> Any:
    """`system` without Claude Code's billing-header block (A.4); `system` itself if it has none.

    In a string `system` the header is the first line; in a block list, a text
    block starting with it. Pure: a copy is made only when something goes.
    The upstream rewrite, the cache key, the OpenAI translation and the
    conversation fingerprint all read `system` through this.
    """
    if isinstance(system, str):
        if not system.startswith(BILLING_PREFIX):
            return system
        return system.partition("\n")[2].lstrip("\n")
    if not isinstance(system, list):
        return system
    kept = [block for block in system if not text_of(block).startswith(BILLING_PREFIX)]
    return system if len(kept) == len(system) else kept


def _set_system(body: dict[str, Any], system: str | list[Any]) -> bool:
    if system:
        body["system"] = system
    else:
        del body["system"]
    return True


def _strip_empty_text(body: dict[str, Any]) -> bool:
    """Remove text blocks with no visible text (A.6 #7: "the real Anthropic API rejects these").

    Whitespace-only text is rejected too, so it goes as well. This covers
    system blocks, message contents and tool_result content arrays. A
    tool_result whose array empties loses its optional `content`. A message
    left with no content is dropped (the API rejects empty content; after an
    empty assistant turn is gone, two user turns in a row are accepted and
    joined by the API). A block's `cache_control` goes with it: an empty
    block adds nothing to the cached prefix.
    """
    changed = False
    system = body.get("system")
    if isinstance(system, list) and any(map(_is_empty_text, system)):
        changed = _set_system(body, [block for block in system if not _is_empty_text(block)])
    messages = body.get("messages")
    if not isinstance(messages, list):
        return changed
    emptied = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), list):
            changed |= _strip_blocks(message, "content")
        emptied = emptied or _is_empty_message(message)
    if emptied:
        body["messages"] = [message for message in messages if not _is_empty_message(message)]
        changed = True
    return changed


def _strip_blocks(holder: dict[str, Any], key: str) -> bool:
    """Strip empty text from `holder[key]`, a block list, recursing into tool_results.

    One pass that allocates nothing when nothing is empty: it runs on every
    block of every request to an Anthropic-format upstream.
    """
    blocks: list[Any] = holder[key]
    changed = empty = False
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            empty = empty or (isinstance(text, str) and not text.strip())
        elif (
            kind == "tool_result"
            and isinstance(block.get("content"), list)
            and _strip_blocks(block, "content")
        ):
            changed = True
            if not block["content"]:
                del block["content"]
    if empty:
        holder[key] = [block for block in blocks if not _is_empty_text(block)]
        changed = True
    return changed


def _is_tool_result(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "tool_result"


def _is_empty_text(block: Any) -> bool:
    return (
        isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
        and not block["text"].strip()
    )


def _is_empty_message(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    content = message.get("content")
    return content == [] or (isinstance(content, str) and not content.strip())


def _convert_system_messages(body: dict[str, Any]) -> bool:
    """Fold role:"system" messages into user turns, B.3's rule with Anthropic content blocks.

    The text is wrapped as `<system-reminder>\\n…\\n</system-reminder>` and
    (1) appended as a text block to the previous message when it is a user
    turn; else (2) inserted into the next user turn, after its leading
    tool_results (B.1: tool_results come first); else (3) sent as a
    standalone user message where the system message stood.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(map(_is_system_message, messages)):
        return False
    out: list[Any] = []
    pending: list[dict[str, Any]] = []  # reminders waiting for the next user turn
    for message in messages:
        if _is_system_message(message):
            reminder = _reminder_block(message.get("content"))
            if out and _is_user_message(out[-1]):
                _blocks_of(out[-1]).append(reminder)
            else:
                pending.append(reminder)
            continue
        if pending and _is_user_message(message):
            blocks = _blocks_of(message)
            at = _leading_tool_results(blocks)
            blocks[at:at] = pending
        elif pending:
            out.append({"role": "user", "content": pending})
        pending = []
        out.append(message)
    if pending:
        out.append({"role": "user", "content": pending})
    body["messages"] = out
    return True


def _is_system_message(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "system"


def _is_user_message(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "user"


def _reminder_block(content: Any) -> dict[str, Any]:
    if isinstance(content, list):
        content = "\n".join(text_of(block) for block in content)
    elif not isinstance(content, str):
        content = ""
    return {"type": "text", "text": f"<system-reminder>\n{content}\n</system-reminder>"}


def _blocks_of(message: dict[str, Any]) -> list[Any]:
    """The message's content as a block list, converting a string content in place."""
    content = message.get("content")
    if isinstance(content, list):
        return content
    blocks: list[Any] = [{"type": "text", "text": content}] if content else []
    message["content"] = blocks
    return blocks


def _leading_tool_results(blocks: list[Any]) -> int:
    count = 0
    while count < len(blocks) and _is_tool_result(blocks[count]):
        count += 1
    return count


def text_of(block: Any) -> str:
    """A text block's text; "" for anything else."""
    if isinstance(block, dict) and block.get("type") == "text":
        text = block.get("text")
        if isinstance(text, str):
            return text
    return ""


def anthropic_tool_choice(choice: Any) -> Any:
    """`tool_choice` in Anthropic's spelling: OpenAI's `{"type": "function", "function":
    {"name": N}}` becomes `{"type": "tool", "name": N}`; anything else is returned as is."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function") or {}
        rest = {k: v for k, v in choice.items() if k not in ("type", "function")}
        return {"type": "tool", "name": function.get("name"), **rest}
    return choice
