"""`MemoryService`: the one face of long-term memory for the middleware, tools, CLI and API.

It joins the pure parts (extraction, surprise, ranking, decay) to a
`MemoryStore` and an optional `Embedder`, and keeps the request path short:

* `retrieve` — on the request path: one FTS5 query and one kNN query, ranked;
  the access counts are written afterwards, off the path;
* `observe_turn` — returns at once; extraction, scoring, embedding and the
  write run in one background worker, in order, a bounded queue in front
  (a full queue drops the turn, logged: memory is best effort, requests are not);
* `prune` — runs every `prune_interval_seconds` and on `lynkr memory prune`.

A store that fails to open (corrupt, locked, unwritable) disables memory for
the process, says why (`problem`), and every call becomes a no-op: a broken
memory never fails a user's request. A failing embedder degrades retrieval
and extraction to keywords, with a warning logged once per failure streak.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from lynkr.memory.decay import prune_plan
from lynkr.memory.embed import Embedder, EmbeddingError
from lynkr.memory.extract import MAX_CONTENT_CHARS, candidates
from lynkr.memory.model import GLOBAL_WORKSPACE, MEMORY_TYPES, Candidate, Hit, Memory, Scope
from lynkr.memory.rank import RankWeights, rank
from lynkr.memory.reflect import ToolStep, reflect, same_skill
from lynkr.memory.store import MemoryStore, NewMemory
from lynkr.memory.surprise import Neighbour, Surprise, SurpriseWeights, Verdict, judge
from lynkr.memory.text import fts_query, keywords

__all__ = ["BASE_IMPORTANCE", "MemoryService", "MemorySettings", "Outcome"]

_log = structlog.get_logger("lynkr.memory")

BASE_IMPORTANCE = {
    "preference": 0.7,
    "decision": 0.8,
    "fact": 0.6,
    "entity": 0.4,
    "relationship": 0.5,
    "skill": 0.5,
}
_NEIGHBOURS = 8
_REEMBED_BATCH = 64
# Background tasks that close() stops instead of waiting for.
_ENDLESS = frozenset({"_prune_schedule", "reembed"})
# Seconds the access counts of retrieved memories wait, so one write carries many.
_TOUCH_DELAY = 1.0
# A prompt's first characters say what it is about; a pasted log need not be embedded whole.
_QUERY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class MemorySettings:
    """The `memory:` section's knobs the service uses (defaults = the schema's)."""

    retrieval_limit: int = 5
    surprise_threshold: float = 0.3
    scope: str = "workspace"  # or "key": each auth key's memories are its own
    half_life_days: float = 30.0
    max_age_days: float = 90.0
    max_count: int = 10_000
    max_content_chars: int = MAX_CONTENT_CHARS
    extraction: bool = True
    injection: bool = True
    prune_interval_seconds: float = 3600.0
    queue_size: int = 256
    surprise_weights: SurpriseWeights = field(default_factory=SurpriseWeights)
    rank_weights: RankWeights = field(default_factory=RankWeights)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one candidate: the verdict and the memory it touched, if any."""

    verdict: Verdict
    memory_id: int | None


# A queued piece of background work (a turn to extract from, a run to reflect on).
_Job = Callable[[], Awaitable[object]]


class MemoryService:
    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder | None = None,
        settings: MemorySettings = MemorySettings(),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.clock = clock
        self.problem: str | None = None
        self.vectors = False
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._embedder_failing = False
        self.dropped_turns = 0
        self._touched: dict[int, int] = {}
        self._touch_timer: asyncio.TimerHandle | None = None

    # Lifetime ---------------------------------------------------------------------------

    @property
    def disabled(self) -> bool:
        return self.problem is not None

    async def start(self, *, background: bool = True) -> None:
        """Open the store (a failure disables memory, logged); start the embedder and the
        worker. `background=False` (the command line) starts no worker and no schedule."""
        try:
            await self.store.open()
        except Exception as exc:  # corrupt, locked, unwritable: memory off, serve goes on
            self.problem = f"the memory store does not open ({type(exc).__name__}: {exc})"
            _log.error("memory_disabled", reason=self.problem)
            return
        if self.embedder is not None:
            await self._start_embedder()
        if background:
            self._queue = asyncio.Queue(self.settings.queue_size)
            self._spawn(self._work())
            self._spawn(self._prune_schedule())
            if self.vectors:
                self._spawn(self.reembed())

    async def _start_embedder(self) -> None:
        assert self.embedder is not None
        try:
            await self.embedder.start()
            dropped = await self.store.use_vector_model(
                self.embedder.model, self.embedder.dimensions
            )
        except Exception as exc:
            _log.warning("memory_keyword_only", reason=f"embeddings do not start: {exc}")
            return
        self.vectors = bool(getattr(self.store, "vectors_available", True))
        if not self.vectors:
            _log.warning("memory_keyword_only", reason=getattr(self.store, "vector_problem", ""))
        elif dropped:
            _log.info("memory_reembedding", model=self.embedder.model)

    async def close(self) -> None:
        if self._touch_timer is not None:
            self._touch_timer.cancel()
            self._flush_touched()
        if self._queue is not None:
            await self._queue.put(None)  # after every queued turn: nothing committed is lost
        for task in list(self._tasks):
            if task.get_name() in _ENDLESS:  # the schedule, a re-embedding: resumed at start
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.embedder is not None:
            await self.embedder.close()
        await self.store.close()  # a store that failed to open still has its worker to end

    def _spawn(self, coroutine: Any) -> None:
        name = "memory-worker" if coroutine.__name__ == "_work" else coroutine.__name__
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def scope_for(self, workspace: str, caller: str | None) -> Scope:
        """The scope of a request from `workspace` by `caller` (the auth key's name)."""
        return Scope(workspace, caller if self.settings.scope == "key" else None)

    # Retrieval --------------------------------------------------------------------------

    async def retrieve(self, scope: Scope, query: str, limit: int | None = None) -> list[Hit]:
        """The memories worth showing for `query`, best first; [] when disabled or nothing fits."""
        if self.disabled:
            return []
        if self.store.surely_empty(scope):
            return []  # most requests of a new project: no embedding, no store round trip
        limit = limit or self.settings.retrieval_limit
        query = query[:_QUERY_CHARS]
        expression = fts_query(keywords(query))
        vector = await self._embed_one(query)
        found = await self.store.candidates(scope, expression, vector, limit * 4)
        if not found.memories:
            return []
        keyword_ids, vector_hits, memories = found.keyword_ids, found.vector_hits, found.memories
        hits = rank(
            query,
            memories,
            keyword_ids,
            vector_hits,
            now=self.clock(),
            half_life_days=self.settings.half_life_days,
            limit=limit,
            weights=self.settings.rank_weights,
        )
        if hits:
            self._touch_soon([hit.memory.id for hit in hits])
        return hits

    def _touch_soon(self, ids: Sequence[int]) -> None:
        """Count accesses in one write a second, not one per retrieval (fewer commits, fewer
        WAL checkpoints in the way of the next search)."""
        for memory_id in ids:
            self._touched[memory_id] = self._touched.get(memory_id, 0) + 1
        if self._touch_timer is None:
            loop = asyncio.get_running_loop()
            self._touch_timer = loop.call_later(_TOUCH_DELAY, self._flush_touched)

    def _flush_touched(self) -> None:
        self._touch_timer = None
        counts, self._touched = self._touched, {}
        if counts and not self.disabled:
            self._spawn(self.store.touch(counts, self.clock()))

    async def _embed_one(self, text: str) -> bytes | None:
        vectors = await self._embed([text])
        return vectors[0] if vectors else None

    async def _embed(self, texts: Sequence[str]) -> list[bytes] | None:
        if not self.vectors or self.embedder is None:
            return None
        try:
            vectors = await self.embedder.embed(texts)
        except EmbeddingError as exc:
            if not self._embedder_failing:
                _log.warning("memory_embeddings_failing", reason=str(exc), fallback="keywords")
            self._embedder_failing = True
            return None
        if self._embedder_failing:
            _log.info("memory_embeddings_back")
        self._embedder_failing = False
        return vectors

    # Remembering ------------------------------------------------------------------------

    def observe_turn(
        self,
        scope: Scope,
        user_text: str,
        assistant_text: str | Callable[[], str],
        *,
        session_id: str | None = None,
        turn: int | None = None,
    ) -> bool:
        """Queue a finished turn for extraction; False when it was dropped (queue full, off).
        `assistant_text` may be a function: the answer is then assembled by the worker."""
        if not self.settings.extraction:
            return False

        async def job() -> object:
            text = assistant_text() if callable(assistant_text) else assistant_text
            return await self.extract(scope, user_text, text, session_id=session_id, turn=turn)

        return self._enqueue(job)

    def observe_run(
        self, scope: object, task: str, steps: Sequence[ToolStep], finished: bool
    ) -> bool:
        """Queue a finished tool run for the Reflector (`reflect`); False when dropped."""
        if not isinstance(scope, Scope) or not self.settings.extraction:
            return False
        return self._enqueue(lambda: self.reflect(scope, task, steps, finished))

    def _enqueue(self, job: _Job) -> bool:
        if self.disabled or self._queue is None:
            return False
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped_turns += 1
            _log.warning("memory_turn_dropped", reason="extraction queue full")
            return False
        return True

    async def drain(self) -> None:
        """Wait until every queued turn is processed and a re-embedding has finished."""
        if self._queue is not None:
            await self._queue.join()
        embedding = [task for task in self._tasks if task.get_name() == "reembed"]
        if embedding:
            await asyncio.gather(*embedding, return_exceptions=True)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            try:
                if job is None:
                    return
                await job()
            except Exception as exc:  # one bad turn must not stop the worker
                _log.warning("memory_extraction_failed", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    async def extract(
        self,
        scope: Scope,
        user_text: str,
        assistant_text: str,
        *,
        session_id: str | None = None,
        turn: int | None = None,
    ) -> list[Outcome]:
        """Extract, judge and store the candidates of one turn (the worker's job)."""
        return [
            await self.remember(scope, candidate, session_id=session_id, turn=turn)
            for candidate in candidates(user_text, assistant_text)
        ]

    async def remember(
        self,
        scope: Scope,
        candidate: Candidate,
        *,
        session_id: str | None = None,
        turn: int | None = None,
    ) -> Outcome:
        """Judge `candidate` against its neighbours and store, merge or supersede it."""
        content = candidate.content[: self.settings.max_content_chars]
        vector = await self._embed_one(content)
        neighbours = await self._neighbours(scope, content, vector)
        recent = await self.store.recent(scope, 5)
        verdict = judge(
            candidate,
            neighbours,
            threshold=self.settings.surprise_threshold,
            recent=recent,
            weights=self.settings.surprise_weights,
        )
        now = self.clock()
        importance = min(
            1.0, BASE_IMPORTANCE.get(candidate.type, 0.5) + 0.3 * verdict.surprise.score
        )
        new = NewMemory(content, candidate.type, scope, importance, verdict.surprise.score, now,
                        session_id, turn)  # fmt: skip
        if verdict.action == "store":
            return Outcome(verdict, await self.store.add(new, vector))
        if verdict.action == "supersede" and verdict.target is not None:
            return Outcome(verdict, await self.store.supersede(verdict.target, new, vector))
        if verdict.action == "merge" and verdict.target is not None:
            existing = next(n.memory for n in neighbours if n.memory.id == verdict.target)
            await self.store.reinforce(existing.id, min(1.0, existing.importance + 0.1), now)
            return Outcome(verdict, existing.id)
        return Outcome(verdict, None)

    async def _neighbours(
        self, scope: Scope, content: str, vector: bytes | None
    ) -> list[Neighbour]:
        """The stored memories nearest `content`, in its own workspace only."""
        own = Scope(scope.workspace, scope.owner)
        expression = fts_query(keywords(content))
        keyword_ids = (
            await self.store.keyword_search(own, expression, _NEIGHBOURS) if expression else []
        )
        similar = await self.store.vector_search(own, vector, _NEIGHBOURS) if vector else []
        cosine = dict(similar)
        ids = list(dict.fromkeys([*keyword_ids, *cosine]))
        memories = await self.store.get(ids)
        return [
            Neighbour(memories[i], cosine.get(i))
            for i in ids
            if i in memories and memories[i].workspace == scope.workspace
        ]

    async def reflect(
        self, scope: Scope, task: str, steps: Sequence[ToolStep], finished: bool
    ) -> Outcome | None:
        """Store what a run teaches as a skill, or count the run on the skill it repeats."""
        reflection = reflect(task, steps, finished)
        if reflection is None:
            return None
        content = reflection.candidate.content
        for neighbour in await self._neighbours(scope, content, await self._embed_one(content)):
            stored = neighbour.memory
            if stored.type == "skill" and same_skill(reflection, stored.content):
                await self.store.record_outcome(stored.id, reflection.succeeded, self.clock())
                verdict = Verdict(
                    "merge", stored.id, Surprise(0.0, {}), "the same skill, run again"
                )
                return Outcome(verdict, stored.id)
        outcome = await self.remember(scope, reflection.candidate)
        if outcome.memory_id is not None and outcome.verdict.action == "store":
            await self.store.record_outcome(outcome.memory_id, reflection.succeeded, self.clock())
        return outcome

    async def add(
        self, scope: Scope, content: str, type: str = "fact", *, everywhere: bool = False
    ) -> Outcome:
        """An explicit add (tool, command line): no surprise test; exact duplicates merge.

        `everywhere` makes it global: every workspace's searches see it.
        """
        if everywhere:
            scope = Scope(GLOBAL_WORKSPACE, scope.owner)
        if type not in MEMORY_TYPES:
            raise ValueError(f"type must be one of {', '.join(MEMORY_TYPES)}, not {type!r}")
        text = _checked_content(content, self.settings.max_content_chars)
        return await self.remember(scope, Candidate(text, type, "explicit", 1.0))

    # Forgetting, stats, pruning ---------------------------------------------------------

    async def matching(self, scope: Scope, query: str, limit: int = 50) -> list[Memory]:
        """Active memories of the scope's own workspace whose words match `query`."""
        expression = fts_query(keywords(query)) or fts_query([query])
        ids = await self.store.keyword_search(scope, expression, limit) if expression else []
        found = await self.store.get(ids)
        return [found[i] for i in ids if i in found and found[i].workspace in scope.workspaces]

    async def forget(self, ids: Sequence[int]) -> int:
        return await self.store.delete(ids)

    async def prune(self) -> int:
        """Delete what `prune_plan` says (too old, too many); returns how many."""
        if self.disabled:
            return 0
        plan = prune_plan(
            await self.store.prune_rows(),
            now=self.clock(),
            max_age_days=self.settings.max_age_days,
            max_count=self.settings.max_count,
            half_life_days=self.settings.half_life_days,
        )
        deleted = await self.store.delete(plan)
        if deleted:
            _log.info("memory_pruned", deleted=deleted)
        return deleted

    async def _prune_schedule(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception as exc:
                _log.warning("memory_prune_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.prune_interval_seconds)

    async def reembed(self) -> int:
        """Embed every active memory that has no vector of the current model; returns how many."""
        done, previous = 0, None
        while batch := await self.store.without_vectors(_REEMBED_BATCH):
            if batch == previous:  # nothing was written: the vector table is not there
                break
            previous = batch
            vectors = await self._embed([content for _, content in batch])
            if vectors is None:
                break
            await self.store.put_vectors(
                [(memory_id, vector) for (memory_id, _), vector in zip(batch, vectors, strict=True)]
            )
            done += len(batch)
        if done:
            _log.info("memory_reembedded", memories=done)
        return done


def _checked_content(content: str, limit: int) -> str:
    """Text fit to store: refused when empty or binary, cut at `limit` characters."""
    text = content.strip()
    if not text:
        raise ValueError("a memory needs some text; got an empty string")
    if (
        "\x00" in text
        or sum(1 for c in text if ord(c) < 32 and c not in "\n\t\r") > len(text) // 10
    ):
        raise ValueError("that looks like binary data, not text; store a sentence instead")
    return text[:limit]
