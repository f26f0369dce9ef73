"""Which session a request belongs to (pure).

Claude Code's own id — the `x-claude-code-session-id` header, else the
`session_id` inside `metadata.user_id` (docs/protocol.md A.3, A.4) — else
`conversation_fingerprint` of the first user message and the system head:
the same for every request of one conversation, never a random id per
request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lynkr.protocol import claude_code_session_id, conversation_fingerprint
from lynkr.protocol.claude_code import SESSION_HEADER

__all__ = ["derive_session_id"]

# The only header `derive_session_id` reads.
_SESSION_HEADER = SESSION_HEADER.encode("ascii")


def derive_session_id(
    headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]], body: Mapping[str, Any] | None
) -> str:
    """The session of a request: Claude Code's id, else a fingerprint of the conversation.

    `headers` is a mapping with lower-case names or the ASGI `scope["headers"]` list.
    """
    if not isinstance(headers, Mapping):
        headers = _session_header(headers)
    return claude_code_session_id(headers, body) or conversation_fingerprint(body or {})


def _session_header(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The one header `claude_code_session_id` reads, from an ASGI list (no other is decoded)."""
    found: dict[str, str] = {}
    for name, value in raw:
        # ASGI servers send lower-case names, callers may not: only a name of the
        # right length is lower-cased. The last one wins, as in a dict.
        if len(name) == len(_SESSION_HEADER) and name.lower() == _SESSION_HEADER:
            found = {SESSION_HEADER: value.decode("latin-1")}
    return found
