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

__all__ = ["OWNER_SEPARATOR", "derive_session_id", "owned_id", "split_owned"]

# Between a caller's name and its session id in a stored id. Key names cannot
# contain it (the schema's name pattern; digests are hex), so `alice/x` is
# always alice's and a session id of an unauthenticated request never is.
OWNER_SEPARATOR = "/"

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


def owned_id(owner: str | None, session_id: str) -> str:
    """The id a session is stored under: its caller's own, or, without a caller,
    the id with the separator escaped so it can never pass for someone's."""
    if owner is None:
        return session_id.replace(OWNER_SEPARATOR, "%2F")
    return owner + OWNER_SEPARATOR + session_id


def split_owned(stored: str) -> tuple[str | None, str]:
    """(owner, session id) of a stored id: `owned_id` undone."""
    owner, separator, session_id = stored.partition(OWNER_SEPARATOR)
    return (owner, session_id) if separator else (None, stored)


def _session_header(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The one header `claude_code_session_id` reads, from an ASGI list (no other is decoded)."""
    found: dict[str, str] = {}
    for name, value in raw:
        # ASGI servers send lower-case names, callers may not: only a name of the
        # right length is lower-cased. The last one wins, as in a dict.
        if len(name) == len(_SESSION_HEADER) and name.lower() == _SESSION_HEADER:
            found = {SESSION_HEADER: value.decode("latin-1")}
    return found
