"""Long-term memory's costs: retrieval at 1k, 10k and 100k memories, extraction per turn.

    .venv/bin/python benchmarks/memory_latency.py [--sizes 1000,10000,100000] [--json out.json]

For each size, the memories — sentences of 8–16 words drawn from the 1,233
words of the quality set (dense on purpose: every query word is in ~1 % of
them), embedded by wordllama, written through the store in one transaction —
go into one workspace (the worst case: every memory is a candidate) or are
spread over 20 workspaces (a team's store: the queries' workspace holds a
twentieth); then `MemoryService.retrieve` answers the quality set's 66 queries three
times (the first query of a workspace loads its vectors: timed apart), with
the in-memory vector index and with sqlite-vec's own kNN. Extraction: one turn
with two memories to keep, and one with none, `MemoryService.extract` at 10k.

The added CPU per request with memory on vs off is `run.py --memory` (same
stack, memory on, side by side; benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory_data import MEMORIES, QUERIES

from lynkr.memory import MemoryService, Scope
from lynkr.memory.embed import WordLlamaEmbedder
from lynkr.memory.sqlite import SQLiteMemoryStore
from lynkr.memory.store import NewMemory

WORKSPACE = Scope("/bench/workspace")
SPREAD = 20
TURN_USER = "Remember that the staging database listens on port 5433. Also fix the login bug."
TURN_ASSISTANT = (
    "I checked `settings/staging.py`: the project uses PgBouncer on port 6432. "
    "The bug is probably a timezone issue; I'll look at it next."
)


def sentences(count: int, seed: int = 1) -> list[str]:
    words = sorted({w for *_, text in MEMORIES for w in text.replace(";", " ").split()})
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(8, 16))) for _ in range(count)]


async def fill(
    store: SQLiteMemoryStore, embedder: WordLlamaEmbedder, count: int, workspaces: int = 1
) -> float:
    texts = sentences(count)
    scopes = [WORKSPACE] + [Scope(f"/bench/other-{n}") for n in range(1, workspaces)]
    started = time.perf_counter()
    batches = range(0, count, 2048)
    vectors = [v for i in batches for v in embedder.embed_now(texts[i : i + 2048])]

    def job(connection: object) -> None:
        for n, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            memory = NewMemory(text, "fact", scopes[n % len(scopes)], 0.6, 0.5, time.time())
            store._insert(connection, memory, vector)  # type: ignore[arg-type]

    await store.db.write(job)
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


async def timed(service: MemoryService, rounds: int = 3) -> list[float]:
    samples = []
    for _ in range(rounds):
        for _, query, _ in QUERIES:
            started = time.perf_counter()
            await service.retrieve(WORKSPACE, query)
            samples.append(time.perf_counter() - started)
    return samples


async def one_size(count: int, workspaces: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        embedder = WordLlamaEmbedder()
        service = MemoryService(SQLiteMemoryStore(Path(folder) / "memory.sqlite3"), embedder)
        await service.start(background=False)
        try:
            store = service.store
            assert isinstance(store, SQLiteMemoryStore)
            filled = await fill(store, embedder, count, workspaces)
            started = time.perf_counter()
            await service.retrieve(WORKSPACE, "warm up")  # loads the workspace's vectors
            first = time.perf_counter() - started
            held = percentiles(await timed(service))
            assert store.index is not None
            store.index.max_vectors = 0
            store.index.clear()
            scanned = percentiles(await timed(service))
            store.index.max_vectors = 200_000
            row: dict[str, object] = {
                "memories": count,
                "workspaces": workspaces,
                "fill_s": round(filled, 1),
                "first_query_ms": round(first * 1000, 1),
                "retrieve": held,
                "retrieve_sqlite_vec_knn": scanned,
            }
            if count == 10_000 and workspaces == 1:
                row["extraction"] = await extraction(service)
            return row
        finally:
            await service.close()


async def extraction(service: MemoryService) -> dict[str, float]:
    costs: dict[str, float] = {}
    for label, user, assistant in (
        ("two memories kept", TURN_USER, TURN_ASSISTANT),
        ("nothing to keep", "Fix the login bug please.", "Done: the test passes now."),
    ):
        samples = []
        for n in range(20):
            scope = Scope(f"/bench/extract-{label}-{n}")  # a fresh workspace: nothing merges
            started = time.perf_counter()
            await service.extract(scope, user, assistant)
            samples.append(time.perf_counter() - started)
        costs[f"{label}_ms"] = round(statistics.median(samples) * 1000, 2)
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rows = [
        asyncio.run(one_size(int(size), workspaces))
        for size in args.sizes.split(",")
        for workspaces in (1, SPREAD)
    ]
    print("| memories | workspaces | retrieve p50 | p99 | sqlite-vec kNN p50 | p99 "
          "| first query | fill |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        held, scanned = row["retrieve"], row["retrieve_sqlite_vec_knn"]
        print(f"| {row['memories']:,} | {row['workspaces']} "
              f"| {held['p50_ms']} ms | {held['p99_ms']} ms "  # type: ignore[index]
              f"| {scanned['p50_ms']} ms | {scanned['p99_ms']} ms "  # type: ignore[index]
              f"| {row['first_query_ms']} ms | {row['fill_s']} s |")  # fmt: skip
    for row in rows:
        if "extraction" in row:
            print(f"\nextraction per turn at {row['memories']:,}: {row['extraction']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
