"""Long-term memory: workspace-scoped memories that follow a user across sessions.

* pure: `extract` (candidates from a turn), `surprise` (what is worth keeping,
  and whether it merges into or supersedes a stored memory), `rank` (keyword
  and vector candidates fused, weighed with importance and recency), `decay`
  (half-lives and what pruning deletes), `inject` (where memories go in a
  request: after its last cache breakpoint), `workspace` (which project a
  request belongs to), `text` (keywords, FTS5 queries);
* I/O at the edges: `store` (the interface) and `sqlite` (FTS5 + sqlite-vec),
  `embed` (wordllama offline, or an embeddings endpoint);
* `service.MemoryService` — the one face the middleware, the tools, the
  command line and the API use.

docs/memory.md explains the design and the numbers. This layer may import
only `lynkr.stores`, `lynkr.protocol`, `lynkr.asgi` (its endpoint) and `lynkr.errors`.
"""

from lynkr.memory.model import (
    DEFAULT_WORKSPACE,
    GLOBAL_WORKSPACE,
    MEMORY_TYPES,
    Candidate,
    Hit,
    Memory,
    Scope,
)
from lynkr.memory.service import MemoryService, MemorySettings, Outcome

__all__ = [
    "DEFAULT_WORKSPACE",
    "GLOBAL_WORKSPACE",
    "MEMORY_TYPES",
    "Candidate",
    "Hit",
    "Memory",
    "MemoryService",
    "MemorySettings",
    "Outcome",
    "Scope",
]
