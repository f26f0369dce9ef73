"""Ranking: keyword and vector candidates fused, then weighed with importance and recency.

Pure: the store finds candidates (FTS5 bm25 order, vector kNN order), this
module decides. For each candidate:

* `fused` — reciprocal rank fusion of its two ranks, `Σ 1/(k + rank)` over
  the lists it is in, divided by the best possible (`2/(k + 1)`), so 0–1;
* `relevance` — an absolute 0–1 measure, so a floor can mean "unrelated":
  the larger of the share of the query's keywords the memory has and the
  embeddings' cosine rescaled above `similarity_floor`;
* `score = relevance_weight · (fused + relevance)/2 + importance_weight ·
  decayed importance + recency_weight · recency` (docs/memory.md, "Ranking").

A candidate under `floor` relevance is dropped, so irrelevant memories never
fill the slots just because there are slots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from lynkr.memory.decay import decayed, recency
from lynkr.memory.model import Hit, Memory
from lynkr.memory.text import keywords

__all__ = ["RankWeights", "coverage", "rank", "skill_confidence", "stem"]

_SUFFIXES = (
    "ations",
    "ation",
    "ings",
    "ing",
    "edly",
    "ies",
    "ied",
    "ers",
    "er",
    "es",
    "ed",
    "ly",
    "s",
)


@dataclass(frozen=True, slots=True)
class RankWeights:
    relevance: float = 0.6
    importance: float = 0.25
    recency: float = 0.15
    rrf_k: int = 60
    floor: float = 0.1
    similarity_floor: float = 0.05


@lru_cache(maxsize=16384)
def stem(word: str) -> str:
    """A crude stem (tests → test, running → runn): enough to match the words FTS5's
    porter stemmer matched, for the coverage measure."""
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def coverage(query_words: Sequence[str], text: str) -> float:
    """The share of the query's keywords (stemmed) that `text` has."""
    if not query_words:
        return 0.0
    have = _stems(text)
    return sum(1 for word in query_words if stem(word) in have) / len(query_words)


@lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    """The stems of a memory's keywords; a memory's words are read once, not per query."""
    return frozenset(stem(word) for word in keywords(text))


def skill_confidence(memory: Memory) -> float:
    """A skill's confidence from its record (Laplace: one success in one try → ⅔)."""
    return (memory.successes + 1) / (memory.successes + memory.failures + 2)


def rank(
    query: str,
    memories: Mapping[int, Memory],
    keyword_ids: Sequence[int],
    vector_hits: Sequence[tuple[int, float]],
    *,
    now: float,
    half_life_days: float,
    limit: int,
    weights: RankWeights = RankWeights(),
) -> list[Hit]:
    """The best `limit` memories for `query`, best first, none under the floor.

    `keyword_ids` are in bm25 order; `vector_hits` are (id, cosine) in distance
    order; ids missing from `memories` are ignored.
    """
    words = keywords(query)
    keyword_rank = {memory_id: i + 1 for i, memory_id in enumerate(keyword_ids)}
    vector_rank = {memory_id: i + 1 for i, (memory_id, _) in enumerate(vector_hits)}
    cosine = dict(vector_hits)
    best_fused = 2.0 / (weights.rrf_k + 1)
    hits = []
    for memory_id in dict.fromkeys([*keyword_ids, *(m for m, _ in vector_hits)]):
        memory = memories.get(memory_id)
        if memory is None:
            continue
        ranks = [r for r in (keyword_rank.get(memory_id), vector_rank.get(memory_id)) if r]
        fused = sum(1.0 / (weights.rrf_k + r) for r in ranks) / best_fused
        similarity = cosine.get(memory_id)
        semantic = _rescaled(similarity, weights.similarity_floor)
        relevance = max(coverage(words, memory.content), semantic)
        if relevance < weights.floor:
            continue
        importance = memory.importance
        if memory.type == "skill":
            importance *= skill_confidence(memory)
        worth = decayed(importance, memory.last_touched, now, half_life_days)
        fresh = recency(memory.last_touched, now, half_life_days)
        score = (
            weights.relevance * (fused + relevance) / 2
            + weights.importance * worth
            + weights.recency * fresh
        )
        reasons = {"fused": fused, "relevance": relevance, "importance": worth, "recency": fresh}
        hits.append(
            Hit(
                memory,
                score,
                relevance,
                keyword_rank.get(memory_id),
                vector_rank.get(memory_id),
                similarity,
                reasons,
            )
        )
    hits.sort(key=lambda hit: (-hit.score, hit.memory.id))
    return hits[:limit]


def _rescaled(similarity: float | None, floor: float) -> float:
    if similarity is None or similarity <= floor:
        return 0.0
    return min(1.0, (similarity - floor) / (1.0 - floor))
