"""The memory service a config describes, and where its layer goes in a route.

Nothing is opened here: the service is started by `lynkr serve`'s lifespan
(a `Lifetime`), which also loads the embedding model, off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lynkr.config import Config
from lynkr.config.model import MemoryConfig, Secret

__all__ = ["build_memory", "memory_position", "memory_settings"]

# The layer goes just before the first of these (the layers that pick and call the
# provider), else innermost: after cache and policy, so a cache hit or a refused
# request costs no retrieval, and the cache keys on what the client sent.
_BEFORE = ("routing", "failover")


def memory_settings(section: MemoryConfig) -> Any:
    from lynkr.memory import MemorySettings
    from lynkr.memory.rank import RankWeights
    from lynkr.memory.surprise import SurpriseWeights

    return MemorySettings(
        retrieval_limit=section.retrieval_limit,
        surprise_threshold=section.surprise_threshold,
        scope=section.scope,
        half_life_days=section.half_life_days,
        max_age_days=section.max_age_days,
        max_count=section.max_count,
        max_content_chars=section.max_content_chars,
        extraction=section.extraction,
        injection=section.injection,
        prune_interval_seconds=section.prune_interval_minutes * 60,
        surprise_weights=SurpriseWeights(**section.surprise_weights),
        rank_weights=RankWeights(**section.ranking),  # type: ignore[arg-type]
    )


def build_memory(config: Config) -> Any:
    """The `MemoryService` of `config.memory` (None when memory is off); nothing opened."""
    section = config.memory
    if not section.enabled:
        return None
    from lynkr.memory import MemoryService
    from lynkr.memory.embed import build_embedder
    from lynkr.memory.sqlite import DATABASE_NAME, SQLiteMemoryStore

    embeddings = {
        key: value.reveal() if isinstance(value, Secret) else value
        for key, value in section.embeddings.items()
    }
    return MemoryService(
        SQLiteMemoryStore(config.server.data_dir / DATABASE_NAME),
        build_embedder(embeddings),
        memory_settings(section),
    )


def memory_position(names: Sequence[str]) -> int:
    """The index in a route's middleware list the memory layer goes at."""
    for position, name in enumerate(names):
        if name in _BEFORE:
            return position
    return len(names)
