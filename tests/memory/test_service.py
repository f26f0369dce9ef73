"""The memory service with its real parts: SQLite + sqlite-vec, wordllama, a loopback
embeddings server (OpenAI and Ollama shapes), a corrupt file, a clock moved by hand."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from lynkr.memory import MemoryService, MemorySettings, Scope
from lynkr.memory.decay import DAY
from lynkr.memory.embed import EmbeddingError, EndpointEmbedder, WordLlamaEmbedder
from lynkr.memory.sqlite import SQLiteMemoryStore

pytestmark = pytest.mark.anyio
SHOP, OTHER = Scope("/home/dev/shop"), Scope("/home/dev/other")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[MemoryService]:
    started = MemoryService(SQLiteMemoryStore(tmp_path / "memory.sqlite3"), WordLlamaEmbedder())
    await started.start()
    yield started
    await started.close()


async def test_a_turn_learnt_in_one_session_is_found_in_the_next(service: MemoryService) -> None:
    assert service.vectors
    accepted = service.observe_turn(
        SHOP,
        "Remember that the staging database listens on port 5433. Fix the flaky test.",
        "I checked `settings/staging.py`: the project uses PgBouncer in front of it. "
        "Maybe the test is flaky because of timezones.",
        session_id="s1",
        turn=1,
    )
    assert accepted
    await service.drain()
    hits = await service.retrieve(SHOP, "which port is the pre-production postgres on")
    assert [h.memory.content for h in hits][:1] == ["the staging database listens on port 5433."]
    assert hits[0].memory.session_id == "s1" and hits[0].memory.turn == 1
    learnt = {m.content for m in await service.store.listing(SHOP, 10)}
    assert any("PgBouncer" in text for text in learnt)
    assert not any("flaky" in text for text in learnt)  # a hypothesis is not a fact
    assert await service.retrieve(OTHER, "which port is the pre-production postgres on") == []


async def test_near_duplicates_merge_and_contradictions_supersede(service: MemoryService) -> None:
    first = await service.add(SHOP, "The staging database listens on port 5433")
    again = await service.add(SHOP, "the staging database listens on port 5433!")
    assert (again.verdict.action, again.memory_id) == ("merge", first.memory_id)
    changed = await service.add(SHOP, "The staging database listens on port 5434")
    assert (changed.verdict.action, changed.verdict.target) == ("supersede", first.memory_id)
    hits = await service.retrieve(SHOP, "staging database port")
    assert [h.memory.content for h in hits] == ["The staging database listens on port 5434"]
    old = (await service.store.get([first.memory_id]))[first.memory_id]  # type: ignore[list-item]
    assert old.superseded_by == changed.memory_id and old.importance > 0.8


async def test_explicit_adds_refuse_binary_and_cut_long_text(service: MemoryService) -> None:
    with pytest.raises(ValueError, match="binary"):
        await service.add(SHOP, "PK\x03\x04\x00\x00garbage")
    with pytest.raises(ValueError, match="empty"):
        await service.add(SHOP, "   ")
    with pytest.raises(ValueError, match="type must be one of"):
        await service.add(SHOP, "fine text", "opinion")
    long = await service.add(SHOP, "We deploy on Fridays. " * 100)
    stored = (await service.store.get([long.memory_id]))[long.memory_id]  # type: ignore[list-item]
    assert len(stored.content) == service.settings.max_content_chars


async def test_global_memories_reach_every_workspace(service: MemoryService) -> None:
    await service.add(SHOP, "Every timestamp is stored in UTC", everywhere=True)
    for scope in (SHOP, OTHER):
        assert [h.memory.content for h in await service.retrieve(scope, "timestamps in UTC")] == [
            "Every timestamp is stored in UTC"
        ]


async def test_decay_and_pruning_follow_the_clock(tmp_path: Path) -> None:
    clock = Clock()
    settings = MemorySettings(max_age_days=90, max_count=2, half_life_days=30)
    service = MemoryService(SQLiteMemoryStore(tmp_path / "m.sqlite3"), None, settings, clock=clock)
    await service.start(background=False)
    try:
        old = await service.add(SHOP, "We deploy with ArgoCD")
        clock.now += 100 * DAY
        facts = ["Billing runs on Kubernetes", "Search uses OpenSearch", "Mail goes through SES"]
        keep = [await service.add(SHOP, fact) for fact in facts]
        assert await service.prune() == 2  # one too old, then one beyond max_count
        left = {m.id for m in await service.store.listing(None, 10)}
        assert old.memory_id not in left and len(left) == 2
        assert left <= {o.memory_id for o in keep}
        clock.now += 29 * DAY
        survivor = (await service.store.listing(SHOP, 1))[0]
        [hit] = await service.retrieve(SHOP, survivor.content, limit=1)
        assert hit.reasons["recency"] == pytest.approx(0.5 ** (29 / 30))
    finally:
        await service.close()


async def test_a_corrupt_store_disables_memory_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    service = MemoryService(SQLiteMemoryStore(path), None)
    await service.start()
    try:
        assert service.disabled and "does not open" in (service.problem or "")
        assert await service.retrieve(SHOP, "anything") == []
        assert service.observe_turn(SHOP, "remember that x is y", "") is False
        assert await service.prune() == 0
    finally:
        await service.close()


def _vector(text: str, dimensions: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).standard_normal(dimensions).tolist()


class Embeddings:
    """A loopback embeddings server: OpenAI's /v1/embeddings and Ollama's /api/embed."""

    def __init__(self) -> None:
        self.status = 200
        self.calls = 0
        self.dimensions = 16

    async def openai(self, request: web.Request) -> web.Response:
        self.calls += 1
        payload = await request.json()
        if self.status != 200:
            return web.json_response({"error": "down"}, status=self.status)
        data = [{"index": i, "embedding": _vector(t, self.dimensions)}
                for i, t in enumerate(payload["input"])]  # fmt: skip
        return web.json_response({"data": list(reversed(data)), "model": payload["model"]})

    async def ollama(self, request: web.Request) -> web.Response:
        self.calls += 1
        payload = await request.json()
        vectors = [_vector(t, self.dimensions) for t in payload["input"]]
        return web.json_response({"embeddings": vectors})


@pytest.fixture
async def embeddings() -> AsyncIterator[tuple[Embeddings, str]]:
    server = Embeddings()
    app = web.Application()
    app.router.add_post("/v1/embeddings", server.openai)
    app.router.add_post("/api/embed", server.ollama)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_an_endpoint_embedder_both_shapes(embeddings: tuple[Embeddings, str]) -> None:
    _server, url = embeddings
    for kind in ("openai", "ollama"):
        embedder = EndpointEmbedder(kind=kind, base_url=url, model="m", dimensions=16)
        try:
            [one, two] = await embedder.embed(["alpha", "beta"])
        finally:
            await embedder.close()
        first = np.frombuffer(one, dtype=np.float32)
        expected = np.array(_vector("alpha", 16), dtype=np.float32)
        assert np.allclose(first, expected / np.linalg.norm(expected), atol=1e-6)
        assert one != two
    wrong = EndpointEmbedder(kind="openai", base_url=url, model="m", dimensions=32)
    with pytest.raises(EmbeddingError, match="not 32-dimensional"):
        await wrong.embed(["alpha"])
    await wrong.close()


async def test_a_failing_endpoint_degrades_to_keywords(
    embeddings: tuple[Embeddings, str], tmp_path: Path
) -> None:
    server, url = embeddings
    embedder = EndpointEmbedder(kind="openai", base_url=url, model="m", dimensions=16)
    service = MemoryService(SQLiteMemoryStore(tmp_path / "m.sqlite3"), embedder)
    await service.start(background=False)
    try:
        await service.add(SHOP, "The staging database listens on port 5433")
        server.status = 503
        added = await service.add(SHOP, "Deploys run with ArgoCD on Fridays")
        assert added.verdict.action == "store"
        hits = await service.retrieve(SHOP, "when do deploys run")
        assert [h.memory.content for h in hits] == ["Deploys run with ArgoCD on Fridays"]
        assert hits[0].vector_rank is None and hits[0].keyword_rank == 1
        server.status = 200
        assert await service.reembed() == 1  # the memory added while it was down
        hits = await service.retrieve(SHOP, "when do deploys run")
        assert hits[0].vector_rank is not None
    finally:
        await service.close()


async def test_switching_models_reembeds_in_the_background(
    embeddings: tuple[Embeddings, str], tmp_path: Path
) -> None:
    server, url = embeddings
    path = tmp_path / "m.sqlite3"
    service = MemoryService(SQLiteMemoryStore(path), WordLlamaEmbedder())
    await service.start(background=False)
    for fact in ["Billing runs on Kubernetes", "Search uses OpenSearch", "Mail goes through SES"]:
        await service.add(SHOP, fact)
    await service.close()
    switched = MemoryService(
        SQLiteMemoryStore(path),
        EndpointEmbedder(kind="ollama", base_url=url, model="m", dimensions=16),
    )
    await switched.start()  # background: the re-embedding runs as a task
    try:
        await switched.drain()
        stats = await switched.store.stats(None)
        assert (stats.vector_model, stats.with_vectors) == ("ollama/m/16", 3)
        assert server.calls >= 1
    finally:
        await switched.close()


async def test_the_reflector_counts_runs_on_one_skill(service: MemoryService) -> None:
    from lynkr.memory.reflect import ToolStep

    steps = [ToolStep("lynkr_file_grep", True), ToolStep("lynkr_tests_run", True)]
    first = await service.reflect(SHOP, "fix the failing login tests", steps, True)
    assert first is not None and first.verdict.action == "store"
    again = await service.reflect(SHOP, "fix the login tests", steps, True)
    broken = [steps[0], ToolStep("lynkr_tests_run", False, "1 failed")]
    failed = await service.reflect(SHOP, "fix the failing login tests", broken, False)
    assert again is not None and again.memory_id == first.memory_id
    assert failed is not None and failed.memory_id == first.memory_id
    skill = (await service.store.get([first.memory_id]))[first.memory_id]  # type: ignore[list-item]
    assert (skill.successes, skill.failures) == (2, 1)
    hits = await service.retrieve(SHOP, "how do I fix failing login tests")
    assert hits and hits[0].memory.type == "skill"
    assert service.observe_run(object(), "x", steps, True) is False  # not a memory scope


async def test_accesses_are_counted_in_one_write_and_kept_at_close(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    service = MemoryService(SQLiteMemoryStore(path), None)
    await service.start()
    added = await service.add(SHOP, "Deploys go out on Tuesdays")
    for _ in range(3):
        assert await service.retrieve(SHOP, "when do deploys go out")
    await service.close()  # the counts waiting for their write are written, not dropped
    reopened = SQLiteMemoryStore(path)
    await reopened.open()
    try:
        [memory] = (await reopened.get([added.memory_id])).values()  # type: ignore[list-item]
        assert memory.access_count == 3 and memory.last_accessed is not None
    finally:
        await reopened.close()
