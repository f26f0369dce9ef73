"""Words of a text: keywords, entities, and an FTS5 query that never breaks on punctuation.

Pure functions over strings, shared by extraction, surprise scoring and retrieval.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["STOPWORDS", "entities", "fts_query", "keywords", "normalized", "sentences"]

_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*[A-Za-z0-9_]|[A-Za-z0-9]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[])|\n+")
_CODE_REF = re.compile(
    r"`([^`\n]{1,80})`|\b[\w\-]+\.(?:py|js|ts|tsx|go|rs|java|rb|c|h|cpp|md|toml|yaml|yml|json|sh|sql|cfg|ini|txt)\b"
)
_CAMEL_OR_SNAKE = re.compile(r"\b(?:[a-z]+[A-Z][A-Za-z0-9]*|[a-z0-9]+_[a-z0-9_]+)\b")
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z0-9]{2,}\b|\b[A-Z]{2,}[0-9]*\b")

_STOPWORDS_TEXT = """
a about above after again against all also am an and any are aren't as at be because
been before being below between both but by can can't cannot could couldn't did didn't
do does doesn't doing don't down during each few for from further had hadn't has hasn't
have haven't having he her here hers herself him himself his how i i'd i'll i'm i've if
in into is isn't it it's its itself just let's like me more most mustn't my myself no
nor not now of off on once only or other ought our ours ourselves out over own same
shan't she should shouldn't so some such than that that's the their theirs them
themselves then there there's these they they'd they'll they're they've this those
through to too under until up very was wasn't we we'd we'll we're we've were weren't
what what's when where which while who whom why will with won't would wouldn't you you'd
you'll you're you've your yours yourself yourselves please thanks thank okay ok yes yeah
sure get got make use using used want need know think one two remember always never from
now on going
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def normalized(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation: what makes two texts "the same"."""
    return " ".join(_WORD.findall(text.lower()))


def keywords(text: str) -> list[str]:
    """The content words of `text`, lower case, in order, each once (no stopwords, ≥ 3 chars)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip(".-/")
        if len(word) >= 3 and word not in STOPWORDS and not word.isdigit():
            seen.setdefault(word, None)
        elif word.isdigit() and len(word) >= 2:
            seen.setdefault(word, None)  # port numbers, versions: specific and searchable
    return list(seen)


def entities(text: str) -> set[str]:
    """Names in `text`: code references, identifiers, proper nouns (lower-cased)."""
    found = {match.group(1) or match.group(0) for match in _CODE_REF.finditer(text)}
    found.update(_CAMEL_OR_SNAKE.findall(text))
    found.update(_CAPITALISED.findall(text))
    return {name.lower().strip() for name in found if name.strip()}


def sentences(text: str) -> list[str]:
    """`text` cut into sentences and lines, stripped, empty ones dropped."""
    return [part.strip() for part in _SENTENCE.split(text) if part and part.strip()]


def fts_query(terms: Iterable[str], *, limit: int = 16) -> str | None:
    """An FTS5 MATCH expression for any of `terms`: each one quoted, so punctuation,
    operators (AND, NEAR) and column names in a user's words are only words.

    None when no term is left (FTS5 refuses an empty query).
    """
    quoted = []
    for term in terms:
        term = term.replace('"', " ").strip()
        if term:
            quoted.append('"' + term + '"')
        if len(quoted) >= limit:
            break
    return " OR ".join(quoted) or None
