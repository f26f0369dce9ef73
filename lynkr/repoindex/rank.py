"""The repo map: which definitions matter most for a conversation, fitted to a token budget.

Pure: plain data in, text out, the same input giving the same bytes. Files form a
graph — an edge from a file to the file defining an identifier it uses, weighted
by how often it uses it and by the identifier itself:

* ×10 for an identifier the conversation mentions, ×10 for a long, specific one
  (snake_case or camelCase of eight characters or more);
* ×0.1 for a `_private` one, ×0.1 for one defined in more than five files (`get`,
  `run`: they say little about where to look), and × log(files / files using it), so a
  name every file uses (`execute`, `list`) weighs little and a rare one a lot (squared);
* ×50 for an edge from a file the conversation mentions; ×0.1 into test files.

A personalised PageRank over that graph (teleporting to the mentioned files, or
to every file when none is) ranks files; each file's rank flows along its edges
to the definitions they use, which ranks definitions. The map lists the best
definitions grouped by file, as their signature lines, as many as fit the
budget (a binary search on the count; tokens estimated as characters / 4).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Definition",
    "estimate_tokens",
    "file_ranks",
    "fit",
    "pagerank",
    "ranked_definitions",
    "render",
]

_SPECIFIC = re.compile(
    r"^(?=.{8,})(?:[a-z0-9]+(?:_[a-z0-9]+)+|[a-z]+(?:[A-Z][a-z0-9]*)+|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)$"
)
_TESTS = re.compile(
    r"(^|/)(tests?|spec|__tests__)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$"
)
_DAMPING = 0.85
_ITERATIONS = 60
_OWN_FILE = 1e-3


@dataclass(frozen=True, slots=True, order=True)
class Definition:
    path: str
    line: int
    name: str
    kind: str
    signature: str


def identifier_weight(name: str, mentioned: set[str], defined_in: int) -> float:
    weight = 1.0
    if name in mentioned:
        weight *= 10
    if _SPECIFIC.match(name):
        weight *= 10
    if name.startswith("_"):
        weight *= 0.1
    if defined_in > 5:
        weight *= 0.1
    return weight


def is_test(path: str) -> bool:
    return bool(_TESTS.search(path))


def edges(
    definitions: Sequence[Definition],
    references: Iterable[tuple[str, str, int]],
    *,
    mentioned_files: set[str],
    mentioned_names: set[str],
) -> dict[tuple[str, str], dict[str, float]]:
    """(from file, to file) → identifier → weight, from `references` (file, name, count)."""
    where: dict[str, set[str]] = defaultdict(set)
    for d in definitions:
        where[d.name].add(d.path)
    references = list(references)
    users: dict[str, set[str]] = defaultdict(set)
    for source, name, _ in references:
        users[name].add(source)
    files = len({d.path for d in definitions} | {source for source, _, _ in references})
    graph: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for source, name, count in references:
        targets = where.get(name)
        if not targets:
            continue
        rarity = math.log((1 + files) / (1 + len(users[name]))) ** 2
        weight = identifier_weight(name, mentioned_names, len(targets)) * math.sqrt(count) * rarity
        if source in mentioned_files:
            weight *= 50
        for target in targets:
            if target == source:
                continue
            edge = weight * (0.1 if is_test(target) else 1.0)
            graph[(source, target)][name] = graph[(source, target)].get(name, 0.0) + edge
    return graph


def pagerank(nodes: Sequence[str], weights: Mapping[tuple[str, str], float],
             personal: Mapping[str, float]) -> dict[str, float]:  # fmt: skip
    """Personalised PageRank by power iteration (dangling rank goes to `personal`)."""
    if not nodes:
        return {}
    total = sum(personal.get(n, 0.0) for n in nodes)
    teleport = {n: (personal.get(n, 0.0) / total if total else 1 / len(nodes)) for n in nodes}
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (source, target), weight in sorted(weights.items()):
        out[source].append((target, weight))
    sums = {source: sum(w for _, w in targets) for source, targets in out.items()}
    rank = dict(teleport)
    for _ in range(_ITERATIONS):
        dangling = sum(rank[n] for n in nodes if n not in out)
        new = {n: (1 - _DAMPING) * teleport[n] + _DAMPING * dangling * teleport[n] for n in nodes}
        for source, targets in out.items():
            share = _DAMPING * rank[source] / sums[source]
            for target, weight in targets:
                new[target] += share * weight
        rank = new
    return rank


def file_ranks(
    definitions: Sequence[Definition],
    references: Sequence[tuple[str, str, int]],
    *,
    mentioned_files: Iterable[str] = (),
    mentioned_names: Iterable[str] = (),
    file_weights: Mapping[str, float] | None = None,
) -> tuple[dict[str, float], dict[tuple[str, str], dict[str, float]]]:
    """The personalised PageRank of every file, and the weighted graph it was run on.
    `file_weights` (e.g. how many of the conversation's words a file holds) add to the
    personalisation."""
    files, names = set(mentioned_files), set(mentioned_names)
    graph = edges(definitions, references, mentioned_files=files, mentioned_names=names)
    nodes = sorted({d.path for d in definitions} | {s for s, _ in graph} | {t for _, t in graph})
    flat = {pair: sum(by_name.values()) for pair, by_name in graph.items()}
    personal = {n: 1.0 for n in nodes if n in files}
    for path, weight in (file_weights or {}).items():
        if weight > 0:
            personal[path] = personal.get(path, 0.0) + weight
    for d in definitions:  # a file defining a mentioned name is where to look too
        if d.name in names:
            personal[d.path] = personal.get(d.path, 0.0) + 1.0
    return pagerank(nodes, flat, personal), graph


def ranked_definitions(
    definitions: Sequence[Definition],
    references: Sequence[tuple[str, str, int]],
    *,
    mentioned_files: Iterable[str] = (),
    mentioned_names: Iterable[str] = (),
    file_weights: Mapping[str, float] | None = None,
) -> list[Definition]:
    """Every definition, most important first (ties by path, line, name)."""
    names = set(mentioned_names)
    rank, graph = file_ranks(definitions, references, mentioned_files=mentioned_files,
                             mentioned_names=names, file_weights=file_weights)  # fmt: skip
    score: dict[tuple[str, str], float] = defaultdict(float)
    totals = {pair[0]: 0.0 for pair in graph}
    for (source, _), by_name in graph.items():
        totals[source] += sum(by_name.values())
    for (source, target), by_name in graph.items():
        for name, weight in by_name.items():
            score[(target, name)] += rank[source] * weight / totals[source]
    for d in definitions:  # a definition also ranks by its own file
        score[(d.path, d.name)] += rank.get(d.path, 0.0) * _OWN_FILE
        if d.name in names:
            score[(d.path, d.name)] += 1.0
    return sorted(definitions, key=lambda d: (-score[(d.path, d.name)], d.path, d.line, d.name))


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def render(chosen: Iterable[Definition]) -> str:
    """Definitions grouped by file (files in path order), each as its signature line."""
    by_file: dict[str, list[Definition]] = defaultdict(list)
    for d in chosen:
        by_file[d.path].append(d)
    lines = []
    for path in sorted(by_file):
        lines.append(f"{path}:")
        for d in sorted(by_file[path], key=lambda d: (d.line, d.name)):
            lines.append(f"  {d.line:>5}│ {d.signature}")
    return "\n".join(lines) + ("\n" if lines else "")


def fit(ranked: Sequence[Definition], tokens: int) -> str:
    """The longest prefix of `ranked` whose rendering fits `tokens` (binary search)."""
    low, high = 0, len(ranked)
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(render(ranked[:middle])) <= tokens:
            low = middle
        else:
            high = middle - 1
    return render(ranked[:low])
