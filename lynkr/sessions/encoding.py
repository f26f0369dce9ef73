"""How a conversation is encoded, hashed and snapshotted for the session store (pure).

Message contents are stored once per session by content hash, without
`cache_control` (Claude Code moves that marker every turn, docs/protocol.md
A.4): the assistant answer recorded after a turn and the same message echoed
back in the next request are one row. A message is encoded by orjson as it is
and the markers are cut from the bytes (`encode_messages`), the same bytes as
encoding `canonical_message`'s copy, for a fraction of the CPU.

A request is prepared (`prepare`) into each message's digest and the rolling
hash of the conversation up to it (`head = hash(previous head + hash(message))`):
equal rolling hashes mean equal prefixes, which is how the store finds the
branch a request continues. `RecentRequests` keeps the last prepared request of
recent sessions, so a conversation that resends itself is hashed only where it
grew.

Everything here works on plain data; the store runs it on its writer thread.
"""

from __future__ import annotations

import hashlib
import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

__all__ = [
    "USAGE_FIELDS",
    "Answer",
    "Messages",
    "Prepared",
    "RecentRequests",
    "RequestSnapshot",
    "answer_parts",
    "canonical_message",
    "digest",
    "encode_message",
    "encode_messages",
    "messages_of",
    "parse_messages",
    "prepare",
    "snapshot_body",
]

# Anthropic's usage field → the column that keeps it.
USAGE_FIELDS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_creation_tokens",
}


def canonical_message(message: Any) -> dict[str, Any]:
    """`{"role", "content": [blocks]}` with string content as one text block, no cache_control."""
    if not isinstance(message, Mapping):
        return {"role": "unknown", "content": [{"type": "json", "value": message}]}
    content = message.get("content")
    if isinstance(content, str):
        blocks: Any = [{"type": "text", "text": content}]
    else:
        blocks = _without_cache_control(content if content is not None else [])
    return {"role": str(message.get("role", "unknown")), "content": blocks}


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):  # orjson encodes both as arrays
        return [_without_cache_control(item) for item in value]
    return value


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_SORTED = orjson.OPT_SORT_KEYS


def _encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message, option=_SORTED)


# A JSON value `"cache_control"` may hold without nesting: an object of scalars, a
# string or a scalar. Strings are matched whole, so a brace inside one is not a brace.
_STRING = rb'"(?:[^"\\]|\\.)*"'
_FLAT_VALUE = rb"(?:\{(?:[^\"{}\[\]]|" + _STRING + rb")*\}|" + _STRING + rb'|[^",{}\[\]]+)'
# In compact JSON an unescaped quote right after `,` or `{` opens a key, so these match
# only `cache_control` keys: not first in their object (the comma goes), or first
# (the comma after it goes, if any). No string content can match.
_CACHE_CONTROL = re.compile(
    rb',"cache_control":'
    + _FLAT_VALUE
    + rb'|(?<=\{)"cache_control":'
    + _FLAT_VALUE
    + rb"(?:,|(?=\}))",
    re.DOTALL,
)
_MARKER = b'"cache_control"'
_MARKER_KEY = b'"cache_control":'
# The end of a canonical message of a common role: `"role"` sorts after `"content"`.
_ROLE_ENDS = {role: b',"role":"' + role.encode() + b'"}' for role in ("user", "assistant")}


def encode_message(message: Any) -> bytes:
    """`canonical_message(message)` encoded with sorted keys: the bytes hashed and stored."""
    return encode_messages([message])[0]


def encode_messages(messages: Sequence[Any]) -> list[bytes]:
    """`encode_message` of each message, without building their canonical copies.

    Each content is encoded as it is (orjson, in C) and the `cache_control` keys
    are cut from the bytes afterwards: the same bytes as encoding the copy
    `canonical_message` makes, at a fraction of the cost. The markers are looked
    for once in all the messages together (one long search is much faster than
    many short ones), and only the messages that have one are cut.
    """
    encoded = [_encode_marked(message) for message in messages]
    joined = b"".join(encoded)
    found = joined.find(_MARKER)
    if found < 0:
        return encoded
    ends = list(accumulate(map(len, encoded)))
    while found >= 0:
        index = bisect_right(ends, found)
        if isinstance(messages[index], dict):  # else canonical already: the marker is content
            encoded[index] = _cut_markers(encoded[index], messages[index])
        found = joined.find(_MARKER, ends[index])
    return encoded


def _encode_marked(message: Any) -> bytes:
    """`canonical_message(message)` encoded, but a dict's `cache_control` markers still in."""
    if not isinstance(message, dict):
        return _encode(canonical_message(message))
    content = message.get("content")
    role = message.get("role", "unknown")
    try:
        if isinstance(content, list) and type(role) is str and role in _ROLE_ENDS:
            return b'{"content":' + orjson.dumps(content, option=_SORTED) + _ROLE_ENDS[role]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        return _encode({"role": str(role), "content": [] if content is None else content})
    except TypeError:  # what orjson cannot encode as given: the slow path copies or refuses it
        return _encode(canonical_message(message))


def _cut_markers(encoded: bytes, message: Any) -> bytes:
    """`encoded` without its `cache_control` keys; a nested value takes the slow path."""
    cut = _CACHE_CONTROL.sub(b"", encoded)
    return _encode(canonical_message(message)) if _MARKER_KEY in cut else cut


@dataclass(frozen=True, slots=True)
class Messages:
    """A request's messages encoded (bytes and strings only: a snapshot) and its model."""

    roles: list[str]
    encoded: list[bytes]
    model: str | None


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """A request as `SessionStore.snapshot` took it: its messages and when it arrived."""

    messages: Messages
    started: float


def messages_of(body: Mapping[str, Any]) -> Messages:
    """The snapshot of a parsed body: its messages encoded, their roles, its model."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        messages = []
    roles = [
        str(m.get("role", "unknown")) if isinstance(m, Mapping) else "unknown" for m in messages
    ]
    model = body.get("model")
    return Messages(roles, encode_messages(messages), model if isinstance(model, str) else None)


def parse_messages(raw: bytes) -> Messages:
    """`messages_of` a body given as bytes (parsed here, on the writer thread)."""
    body = orjson.loads(raw)
    return messages_of(body if isinstance(body, dict) else {})


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request's messages, canonical, with each one's digest and rolling prefix hash."""

    roles: list[str]
    encoded: list[bytes]
    digests: list[str]
    prefixes: list[str]
    model: str | None


def prepare(messages: Messages, last: Prepared | None = None) -> Prepared:
    """Hash `messages`, reusing `last`'s hashes for the leading messages both have."""
    same = _common_prefix(messages.encoded, last.encoded) if last is not None else 0
    digests = last.digests[:same] if last is not None else []
    prefixes = last.prefixes[:same] if last is not None else []
    head = prefixes[-1] if prefixes else ""
    for data in messages.encoded[same:]:
        own = digest(data)
        head = digest((head + own).encode("ascii"))
        digests.append(own)
        prefixes.append(head)
    return Prepared(messages.roles, messages.encoded, digests, prefixes, messages.model)


def _common_prefix(new: list[bytes], old: list[bytes]) -> int:
    same = 0
    for one, other in zip(new, old, strict=False):
        if one != other:
            break
        same += 1
    return same


_INT64_MAX = 2**63 - 1
# Bytes of recent requests kept to reuse their hashes: a dozen long conversations.
RECENT_BYTES = 8 * 2**20
_RECENT_SESSIONS = 1024
# Approximate bytes of Python objects besides the encoded messages (see `RecentRequests.prepare`).
_PER_MESSAGE = 300
_PER_ENTRY = 4096


class RecentRequests:
    """Recent sessions' last prepared requests, at most `budget` bytes of messages.

    A request resends its conversation, and hashing it is most of what preparing
    costs: where a message's bytes equal the last request's, so do its digest and
    rolling hash. They are pure functions of the bytes, so this can never go
    stale, whatever else writes to the file. Used on the worker thread only.
    """

    def __init__(self, budget: int = RECENT_BYTES, max_sessions: int = _RECENT_SESSIONS) -> None:
        self.budget = budget
        self.max_sessions = max_sessions
        self.size = 0
        self._last: dict[str, tuple[Prepared, int]] = {}  # least recently used first

    def prepare(self, session_id: str, messages: Messages) -> Prepared:
        last, size = self._last.pop(session_id, (None, 0))
        self.size -= size
        prepared = prepare(messages, last)
        # What an entry really holds: the messages' bytes, and per message a digest, a
        # rolling hash and list slots; per entry, the objects around them. Counting the
        # bytes alone let a flood of one-message sessions grow far past the budget.
        size = sum(map(len, prepared.encoded)) + _PER_MESSAGE * len(prepared.encoded)
        size += _PER_ENTRY
        if size <= self.budget:
            self._last[session_id] = prepared, size
            self.size += size
        while self.size > self.budget or len(self._last) > self.max_sessions:
            self.size -= self._last.pop(next(iter(self._last)))[1]
        return prepared


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer as the store keeps it: encoded like a message, its stop reason, its usage."""

    encoded: bytes
    stop_reason: str | None
    usage: dict[str, int]


def snapshot_body(body: Mapping[str, Any] | bytes | bytearray | memoryview) -> Messages | bytes:
    """What the worker thread needs of the body, whatever the caller does with it next.

    Bytes are copied and parsed on the worker; a parsed body is encoded here, once.
    """
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    return messages_of(body)


def answer_parts(message_or_content: Any, usage: Mapping[str, Any] | None) -> Answer:
    """Snapshot an answer: a message dict, a content list or a string; usage as integers.

    The message is encoded here, so the caller may reuse its objects at once.
    """
    stop_reason = None
    if isinstance(message_or_content, Mapping) and "content" in message_or_content:
        content = message_or_content.get("content")
        stop_reason = message_or_content.get("stop_reason")
        if usage is None and isinstance(message_or_content.get("usage"), Mapping):
            usage = message_or_content["usage"]
    else:
        content = message_or_content
    encoded = encode_message({"role": "assistant", "content": content})
    counts = {
        field: min(max(int(value), 0), _INT64_MAX)  # SQLite integers are 64-bit
        for field, value in (usage or {}).items()
        if field in USAGE_FIELDS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
    return Answer(encoded, stop_reason if isinstance(stop_reason, str) else None, counts)
