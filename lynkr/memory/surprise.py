"""How surprising a candidate memory is, and what to do with it: store, merge, supersede, skip.

Pure functions over plain data. The score is a weighted sum of five factors,
each in [0, 1] (`SurpriseWeights`, configurable under `memory.surprise_weights`):

* novelty (0.30) — 1 − how close the nearest stored memories are, by embedding
  cosine where there is one and by shared keywords always;
* contradiction (0.40) — the candidate says the opposite of a stored memory on
  the same subject: a negation the other lacks (0.8), a correction ("instead
  of", "no longer", "switched to": 0.7), another value for the same setting
  (0.7), an opposite pair (always/never, enable/disable: 0.6);
* specificity (0.15) — names, numbers, code references, identifiers, length;
* emphasis (0.10) — how the user marked it ("remember", "must", "!", capitals);
* context switch (0.05) — how far it is from the most recent memories.

`judge` turns a score into a verdict (docs/memory.md, "What is kept").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lynkr.memory.model import Candidate, Memory
from lynkr.memory.text import keywords, normalized

__all__ = [
    "Neighbour",
    "Surprise",
    "SurpriseWeights",
    "Verdict",
    "context_switch",
    "contradiction",
    "emphasis",
    "judge",
    "novelty",
    "specificity",
    "surprise",
]

_NEGATION = re.compile(
    r"\b(?:not|no|never|don't|doesn't|didn't|won't|isn't|aren't|can't|cannot|shouldn't|"
    r"mustn't|without|avoid|stop)\b",
    re.IGNORECASE,
)
_CORRECTION = re.compile(
    r"\b(?:instead of|rather than|no longer|not anymore|actually|correction|changed (?:from|to)|"
    r"switched (?:from|to)|moved (?:from|to)|replaced|now uses?|from now on)\b",
    re.IGNORECASE,
)
_OPPOSITES = (
    ("always", "never"), ("enable", "disable"), ("enabled", "disabled"), ("on", "off"),
    ("yes", "no"), ("true", "false"), ("allow", "deny"), ("more", "less"),
    ("increase", "decrease"), ("start", "stop"), ("dark", "light"), ("tabs", "spaces"),
    ("sync", "async"), ("before", "after"), ("include", "exclude"), ("public", "private"),
)  # fmt: skip
_EMPHASIS = re.compile(
    r"\b(?:important|critical|crucial|essential|must|need to|remember|note that|"
    r"pay attention|make sure|always|never|from now on)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)*\b")
_CODE = re.compile(r"`[^`]+`|\b[\w-]+\.[a-z]{1,4}\b|\b\w+/\w[\w/.-]*")
_IDENT = re.compile(r"\b(?:[a-z]+[A-Z]\w*|[a-z0-9]+_[a-z0-9_]+)\b")
_PROPER = re.compile(r"(?<!^)(?<![.!?] )\b[A-Z][A-Za-z0-9]+\b|\b[A-Z]{2,}\b")
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_REPEAT = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SurpriseWeights:
    novelty: float = 0.30
    contradiction: float = 0.40
    specificity: float = 0.15
    emphasis: float = 0.10
    context_switch: float = 0.05


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A stored memory near a candidate; `similarity` is the embeddings' cosine, if any."""

    memory: Memory
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class Surprise:
    score: float
    factors: dict[str, float]
    # The stored memory the candidate contradicts most, if any does.
    contradicts: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """`store`, `merge` (into `target`), `supersede` (`target` is replaced) or `skip`."""

    action: str
    target: int | None
    surprise: Surprise
    reason: str


def _overlap(a: Sequence[str], b: Sequence[str]) -> float:
    """The share of `a`'s keywords that `b` has too."""
    if not a:
        return 0.0
    other = set(b)
    return sum(1 for word in a if word in other) / len(a)


def closeness(text: str, neighbour: Neighbour) -> float:
    """How close `text` is to a stored memory, 0–1: the larger of cosine and keyword overlap."""
    mine, theirs = keywords(text), keywords(neighbour.memory.content)
    shared = min(_overlap(mine, theirs), _overlap(theirs, mine)) if mine and theirs else 0.0
    cosine = max(0.0, neighbour.similarity or 0.0)
    return max(shared, cosine)


def novelty(text: str, neighbours: Sequence[Neighbour]) -> float:
    """1 with nothing stored near it; 0 for a memory already stored word for word."""
    if not neighbours:
        return 1.0
    return max(0.0, 1.0 - max(closeness(text, n) for n in neighbours))


def _same_subject(text: str, other: str, similarity: float | None = None) -> bool:
    """Whether two texts are about the same thing: most of the shorter one's keywords are
    the other's too (at least two), or their embeddings are very close."""
    mine, theirs = set(keywords(text)), set(keywords(other))
    shared = mine & theirs
    if not shared:
        return False
    if similarity is not None and similarity >= 0.85:
        return True
    return len(shared) >= 2 and len(shared) / min(len(mine), len(theirs)) >= 0.5


def _contradiction_with(text: str, other: str, similarity: float | None = None) -> float:
    if not _same_subject(text, other, similarity):
        return 0.0
    score = 0.0
    if bool(_NEGATION.search(text)) != bool(_NEGATION.search(other)):
        score = max(score, 0.8)
    if _CORRECTION.search(text):
        score = max(score, 0.7)
    mine, theirs = set(_NUMBER.findall(text)), set(_NUMBER.findall(other))
    if mine and theirs and not mine & theirs:
        score = max(score, 0.7)  # the same setting, another value: port 5432 → 5433
    words, other_words = set(normalized(text).split()), set(normalized(other).split())
    for left, right in _OPPOSITES:
        if (left in words and right in other_words) or (right in words and left in other_words):
            score = max(score, 0.6)
    return score


def contradiction(text: str, neighbours: Sequence[Neighbour]) -> tuple[float, int | None]:
    """The strongest contradiction with a neighbour of the same subject, and which one."""
    best, target = 0.0, None
    for neighbour in neighbours:
        score = _contradiction_with(text, neighbour.memory.content, neighbour.similarity)
        if score > best:
            best, target = score, neighbour.memory.id
    return best, target


def specificity(text: str) -> float:
    """Names, numbers, code references and identifiers make a memory worth more."""
    score = min(0.5, 0.15 * len(_PROPER.findall(text)))
    score += min(0.35, 0.15 * len(_NUMBER.findall(text)))
    score += min(0.4, 0.2 * len(_CODE.findall(text)))
    score += min(0.3, 0.15 * len(_IDENT.findall(text)))
    words = len(text.split())
    score += (0.15 if words > 10 else 0.0) + (0.15 if words > 18 else 0.0)
    return min(1.0, score)


def emphasis(user_text: str) -> float:
    """How strongly the user marked what they said."""
    score = 0.2 * len(_EMPHASIS.findall(user_text))
    score += min(0.3, 0.15 * user_text.count("!"))
    score += min(0.2, 0.1 * len(_CAPS_WORD.findall(user_text)))
    score += 0.15 if _REPEAT.search(user_text) else 0.0
    return min(1.0, score)


def context_switch(text: str, recent: Sequence[Memory]) -> float:
    """1 − the share of the candidate's keywords the most recent memories have; 0 with none."""
    if not recent:
        return 0.0
    seen = {word for memory in recent for word in keywords(memory.content)}
    mine = keywords(text)
    return 1.0 - _overlap(mine, list(seen)) if mine else 0.0


def surprise(
    candidate: Candidate,
    neighbours: Sequence[Neighbour],
    recent: Sequence[Memory] = (),
    weights: SurpriseWeights = SurpriseWeights(),
) -> Surprise:
    """The weighted surprise of `candidate` against what is stored, clamped to [0, 1]."""
    against, target = contradiction(candidate.content, neighbours)
    factors = {
        "novelty": novelty(candidate.content, neighbours),
        "contradiction": against,
        "specificity": specificity(candidate.content),
        "emphasis": max(candidate.emphasis, 0.0),
        "context_switch": context_switch(candidate.content, recent),
    }
    score = sum(getattr(weights, name) * value for name, value in factors.items())
    return Surprise(min(1.0, max(0.0, score)), factors, target if against else None)


def judge(
    candidate: Candidate,
    neighbours: Sequence[Neighbour],
    *,
    threshold: float,
    recent: Sequence[Memory] = (),
    weights: SurpriseWeights = SurpriseWeights(),
    near_duplicate: float = 0.9,
) -> Verdict:
    """What to do with `candidate`, in this order:

    1. the same words as a stored memory → merge into it (explicit adds too);
    2. contradicts a stored memory (≥ 0.6) → store it, superseding that one;
    3. almost the same as a stored memory (closeness ≥ `near_duplicate`) → merge;
    4. an explicit add or a reflection → store; else store when the surprise reaches
       `threshold`.
    """
    scored = surprise(candidate, neighbours, recent, weights)
    same = normalized(candidate.content)
    for neighbour in neighbours:
        if normalized(neighbour.memory.content) == same:
            return Verdict("merge", neighbour.memory.id, scored, "the same words are stored")
    if scored.contradicts is not None and scored.factors["contradiction"] >= 0.6:
        return Verdict("supersede", scored.contradicts, scored, "contradicts a stored memory")
    if neighbours:
        nearest = max(neighbours, key=lambda n: closeness(candidate.content, n))
        if closeness(candidate.content, nearest) >= near_duplicate:
            return Verdict("merge", nearest.memory.id, scored, "almost the same is stored")
    if candidate.source in ("explicit", "reflection"):
        reason = "added explicitly" if candidate.source == "explicit" else "a run's skill"
        return Verdict("store", None, scored, reason)
    if scored.score >= threshold:
        return Verdict("store", None, scored, f"surprise {scored.score:.2f} ≥ {threshold}")
    return Verdict("skip", None, scored, f"surprise {scored.score:.2f} < {threshold}")
