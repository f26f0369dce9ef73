"""Retrieval quality of long-term memory: recall@5 and MRR, keyword vs vector vs hybrid.

    .venv/bin/python benchmarks/memory_quality.py [--json out.json] [--misses]

Loads the 205 memories of `memory_data.py` (five workspaces) into a fresh store
through `MemoryService.add`, the way `lynkr memory add` stores them, then asks
the 66 paraphrased queries in their workspace, three ways, each ranked by the
same `lynkr.memory.rank.rank` with the relevance floor on (what would really be
added to a request):

* keyword — FTS5 bm25 candidates only;
* vector  — sqlite-vec kNN candidates only (wordllama, offline);
* hybrid  — both, fused (what lynkr does).

recall@5: the share of queries whose target is among the first five; MRR: the
mean of 1/rank of the target within the first ten (0 when absent). Leaks: any
result, for any query (the leak queries included), from another workspace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory_data import LEAK_QUERIES, MEMORIES, QUERIES, WORKSPACES

from lynkr.memory import MemoryService, Scope
from lynkr.memory.embed import WordLlamaEmbedder
from lynkr.memory.rank import rank
from lynkr.memory.sqlite import SQLiteMemoryStore
from lynkr.memory.text import fts_query, keywords

MODES = ("keyword", "vector", "hybrid")
DEPTH = 10


async def load(service: MemoryService) -> tuple[dict[int, str], dict[str, int]]:
    ids: dict[int, str] = {}
    actions: dict[str, int] = {}
    for key, workspace, memory_type, content in MEMORIES:
        outcome = await service.add(Scope(WORKSPACES[workspace]), content, memory_type)
        actions[outcome.verdict.action] = actions.get(outcome.verdict.action, 0) + 1
        if outcome.memory_id is not None:
            ids[outcome.memory_id] = key
    return ids, actions


async def ranked(service: MemoryService, scope: Scope, query: str, mode: str) -> list[int]:
    expression = fts_query(keywords(query))
    keyword_ids: list[int] = []
    vector_hits: list[tuple[int, float]] = []
    if mode in ("keyword", "hybrid") and expression:
        keyword_ids = await service.store.keyword_search(scope, expression, DEPTH * 4)
    if mode in ("vector", "hybrid"):
        vector = (await service.embedder.embed([query]))[0]  # type: ignore[union-attr]
        vector_hits = await service.store.vector_search(scope, vector, DEPTH * 4)
    memories = await service.store.get([*keyword_ids, *(i for i, _ in vector_hits)])
    hits = rank(query, memories, keyword_ids, vector_hits, now=time.time(),
                half_life_days=service.settings.half_life_days, limit=DEPTH,
                weights=service.settings.rank_weights)  # fmt: skip
    return [hit.memory.id for hit in hits]


async def measure(show_misses: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        service = MemoryService(SQLiteMemoryStore(Path(folder) / "memory.sqlite3"),
                                WordLlamaEmbedder())  # fmt: skip
        await service.start(background=False)
        try:
            ids, actions = await load(service)
            workspace_of = {memory_id: next(w for k, w, *_ in MEMORIES if k == key)
                            for memory_id, key in ids.items()}  # fmt: skip
            results: dict[str, dict[str, float]] = {}
            leaks = 0
            misses: dict[str, list[str]] = {mode: [] for mode in MODES}
            for mode in MODES:
                found5 = reciprocal = 0.0
                for workspace, query, target in QUERIES:
                    order = [ids[i] for i in await ranked(service, Scope(WORKSPACES[workspace]),
                                                          query, mode)]  # fmt: skip
                    if target in order[:5]:
                        found5 += 1
                    else:
                        misses[mode].append(f"{query!r} → {order[:3]} (wanted {target})")
                    if target in order:
                        reciprocal += 1 / (order.index(target) + 1)
                for workspace, query in [*((w, q) for w, q, _ in QUERIES), *LEAK_QUERIES]:
                    scope = Scope(WORKSPACES[workspace])
                    for memory_id in await ranked(service, scope, query, mode):
                        leaks += workspace_of[memory_id] != workspace
                results[mode] = {
                    "recall@5": round(found5 / len(QUERIES), 3),
                    "mrr@10": round(reciprocal / len(QUERIES), 3),
                }
        finally:
            await service.close()
    if show_misses:
        for mode in MODES:
            print(f"\n{mode} misses ({len(misses[mode])}):")
            for line in misses[mode]:
                print("  " + line)
    return {
        "memories": len(MEMORIES),
        "stored": actions,
        "queries": len(QUERIES),
        "leak_queries": len(LEAK_QUERIES),
        "results": results,
        "cross_workspace_leaks": leaks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--misses", action="store_true", help="print the queries each mode missed")
    args = parser.parse_args()
    report = asyncio.run(measure(args.misses))
    print(f"\n{report['memories']} memories in {len(WORKSPACES)} workspaces (stored: "
          f"{report['stored']}), {report['queries']} paraphrased queries, "
          f"{report['leak_queries']} cross-workspace probes\n")  # fmt: skip
    print("| search | recall@5 | MRR@10 |\n|---|---|---|")
    for mode, numbers in report["results"].items():  # type: ignore[attr-defined]
        print(f"| {mode} | {numbers['recall@5']:.3f} | {numbers['mrr@10']:.3f} |")
    print(f"\ncross-workspace leaks: {report['cross_workspace_leaks']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
