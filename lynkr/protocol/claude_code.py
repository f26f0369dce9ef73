"""Which conversation a request belongs to, from what Claude Code sends (docs/protocol.md A.3, A.4).

Two readers need the same answer: the routing middleware (session stickiness)
and the agent's session store. Both may import `protocol`, so it lives here.

* `claude_code_session_id` — the client's own id: the `x-claude-code-session-id`
  header (A.3), else the `session_id` inside `metadata.user_id`, which is a
  JSON *string* (A.4). None when the client sent neither.
* `conversation_fingerprint` — for every other client: a short hash of the
  first user message's text and the head of the system prompt, without the
  billing-header block (its 3-hex suffix is per conversation, but title
  requests carry another one, A.4). Both stay the same while a conversation
  grows, so every request of one conversation gets the same fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from lynkr.protocol.anthropic import text_of, without_billing_header

__all__ = [
    "SESSION_HEADER",
    "SYSTEM_HEAD_CHARS",
    "claude_code_session_id",
    "conversation_fingerprint",
]

# Claude Code's session header (A.3).
SESSION_HEADER = "x-claude-code-session-id"
# How much of the system prompt the fingerprint reads: enough to tell agents
# apart, short enough that a system prompt growing later (tool lists, memory
# injected near the end) does not split one conversation in two.
SYSTEM_HEAD_CHARS = 2000


def claude_code_session_id(
    headers: Mapping[str, str], body: Mapping[str, Any] | None
) -> str | None:
    """Claude Code's session: its header, else `metadata.user_id`'s session_id (A.3, A.4).

    `headers` has lower-case names. None when neither is present or usable.
    """
    value = headers.get(SESSION_HEADER)
    if value:
        return value
    metadata = (body or {}).get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str) and user_id.startswith("{"):
        try:
            parsed = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return None
        found = parsed.get("session_id") if isinstance(parsed, dict) else None
        return found if isinstance(found, str) and found else None
    return None


def conversation_fingerprint(body: Mapping[str, Any]) -> str:
    """`fp_` + 24 hex of sha256(first user message text, system head without billing header).

    Stable while the conversation grows: later messages and the moving
    `cache_control` marker are not part of it.
    """
    digest = hashlib.sha256()
    digest.update(_system_head(body.get("system")).encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(_first_user_text(body.get("messages")).encode("utf-8", "surrogatepass"))
    return "fp_" + digest.hexdigest()[:24]


def _system_head(system: Any) -> str:
    system = without_billing_header(system)
    if isinstance(system, str):
        return system.lstrip("\n")[:SYSTEM_HEAD_CHARS]
    if not isinstance(system, list):
        return ""
    return "\n".join(text_of(block) for block in system)[:SYSTEM_HEAD_CHARS]


def _first_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [text_of(block) for block in content]
                joined = "\n".join(t for t in texts if t)
                # A first message without text (only an image, say): its JSON still tells apart.
                return joined or orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
            return ""
    return ""
