"""Candidates from a finished turn: what the user asked to be kept, what the assistant verified.

Pure functions over the turn's text. From the **user**: what they ask to be
remembered ("remember…", "note that…"), rules for the future ("from now on…",
"we always/never…", "never…"), stated preferences ("I prefer…") and decisions
("we decided…", "let's go with…"), and statements about the project ("our CI
runs on…"). From the **assistant**: statements about the project that it
verified — a declarative sentence about the project naming what it checked
(a file, a command, "I confirmed") — never its guesses, plans or questions.

Nothing comes out of a turn marked private (`<private>` … `</private>` is cut
out; `#private` anywhere drops the turn), nor out of Claude Code's side
requests (`side_request`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lynkr.memory.model import Candidate
from lynkr.memory.surprise import emphasis
from lynkr.memory.text import sentences

__all__ = ["MAX_CONTENT_CHARS", "candidates", "human_text", "side_request", "type_of"]

MAX_CONTENT_CHARS = 500
_MIN_CHARS = 12

_REMEMBER = re.compile(
    r"^(?:please\s+)?(?:remember|note|keep in mind|fyi|for the record)"
    r"(?:\s+that)?\s*[:,]?\s+(?P<x>.+)",
    re.IGNORECASE,
)
_RULE = re.compile(
    r"\bfrom now on\b|\b(?:we|i|you)\s+(?:should\s+)?(?:always|never)\b"
    r"|^(?:always|never|don't ever|do not ever)\b",
    re.IGNORECASE,
)
_PREFERENCE = re.compile(
    r"\bi(?:'d| would)? (?:prefer|like|rather|want you to)\b|\bmy preference\b|\bi don't like\b",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(?:we|i)(?:'ve| have)? (?:decided|chose|chosen|agreed|settled on|picked|opted)\b"
    r"|\bwe(?:'re| are) (?:going with|switching to|moving to)\b"
    r"|\blet's (?:use|go with|stick with)\b"
    r"|\bwe(?:'ll| will) use\b",
    re.IGNORECASE,
)
_PROJECT = re.compile(
    r"\b(?:our|the|this) (?:project|repo|repository|codebase|app|application|service|team|api|"
    r"database|db|ci|build|tests?|test suite|backend|frontend|server|deploy(?:ment)?s?|config)\b"
    r".{0,40}?\b(?:uses?|is|are|runs?|requires?|lives?|deploys?|has|have|needs?|listens?|"
    r"stores?|reads?|writes?|targets?|depends)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:maybe|might|may|probably|likely|seems?|appears?|i think|i believe|perhaps|could|"
    r"should|would|guess|assum\w*|hypothes\w*|let me|let's|i'll|i will|we'll|next|plan\w*|try\w*|"
    r"unclear|not sure|possibly|suspect|if)\b",
    re.IGNORECASE,
)
_VERIFIED = re.compile(
    r"\b(?:confirmed|verified|checked|i found|found that|according to|defined in|configured in|"
    r"set in|the output shows|passes|passed|succeeded|fails with)\b|`[^`]+`",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_PRIVATE_SPAN = re.compile(r"<private>.*?(?:</private>|\Z)", re.DOTALL | re.IGNORECASE)
_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.DOTALL)
_PRIVATE_TURN = re.compile(r"#private\b", re.IGNORECASE)
_SIDE_PREFIXES = (
    "CRITICAL: Respond with TEXT ONLY",  # Claude Code's /compact
    "Output token limit hit",  # its max_tokens recovery
    "Perform a web search for the query",  # its WebSearch sub-request
)


def human_text(message: Any) -> str:
    """The text a person typed in a user message: its text blocks without reminders."""
    if not isinstance(message, Mapping) or message.get("role") != "user":
        return ""
    content = message.get("content")
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = [
            block.get("text", "")
            for block in content
            if isinstance(block, Mapping) and block.get("type") == "text"
        ]
    else:
        return ""
    text = "\n".join(part for part in parts if isinstance(part, str))
    return _REMINDER.sub("", text).strip()


def side_request(body: Mapping[str, Any]) -> bool:
    """Claude Code's title, compaction, recovery and web-search requests, and quota probes:
    not a conversation turn, so nothing is taken from or added to them."""
    if body.get("tools") == [] or (body.get("max_tokens") or 2) <= 1:
        return True
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "tool":
        return True
    messages = body.get("messages")
    users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"] if (
        isinstance(messages, list)) else []  # fmt: skip
    return bool(users) and human_text(users[-1]).startswith(_SIDE_PREFIXES)


def type_of(sentence: str) -> str:
    if _DECISION.search(sentence):
        return "decision"
    if _PREFERENCE.search(sentence) or _RULE.search(sentence):
        return "preference"
    return "fact"


def _clean(sentence: str) -> str:
    sentence = " ".join(sentence.split()).strip(" -*>#")
    return sentence[:MAX_CONTENT_CHARS]


def _from_user(text: str) -> list[Candidate]:
    marked = emphasis(text)
    found = []
    for sentence in sentences(text):
        if sentence.endswith("?"):
            continue
        remembered = _REMEMBER.match(sentence)
        if remembered:
            content = remembered.group("x")
            found.append(Candidate(_clean(content), type_of(content), "user", max(marked, 0.6)))
        elif _RULE.search(sentence) or _PREFERENCE.search(sentence) or _DECISION.search(sentence):
            found.append(Candidate(_clean(sentence), type_of(sentence), "user", marked))
        elif _PROJECT.search(sentence) and not _HEDGE.search(sentence):
            found.append(Candidate(_clean(sentence), "fact", "user", marked))
    return found


def _from_assistant(text: str) -> list[Candidate]:
    found = []
    for sentence in sentences(_FENCE.sub(" ", text)):
        if sentence.endswith(("?", ":")) or _HEDGE.search(sentence):
            continue
        if _PROJECT.search(sentence) and _VERIFIED.search(sentence):
            found.append(Candidate(_clean(sentence), "fact", "assistant"))
    return found


def candidates(user_text: str, assistant_text: str) -> list[Candidate]:
    """What a finished turn offers to remember, user first, each text once."""
    if _PRIVATE_TURN.search(user_text):
        return []
    user_text = _PRIVATE_SPAN.sub(" ", user_text)
    assistant_text = _PRIVATE_SPAN.sub(" ", assistant_text)
    seen: set[str] = set()
    found = []
    for candidate in [*_from_user(user_text), *_from_assistant(assistant_text)]:
        key = candidate.content.lower()
        if len(candidate.content) >= _MIN_CHARS and key not in seen:
            seen.add(key)
            found.append(candidate)
    return found
