"""The plain data of long-term memory: what a memory is, whose it is, what a search found."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_WORKSPACE",
    "GLOBAL_WORKSPACE",
    "MEMORY_TYPES",
    "Candidate",
    "Hit",
    "Memory",
    "Scope",
]

MEMORY_TYPES = ("preference", "decision", "fact", "entity", "relationship", "skill")
# A request that names no project (not Claude Code, no x-lynkr-workspace header).
DEFAULT_WORKSPACE = "default"
# Memories every workspace sees; only an explicit add makes one.
GLOBAL_WORKSPACE = "*global*"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose memories a request may see and make: a workspace, and an owner when keys are named.

    `owner` is the auth key's name under `memory.scope: key`, else None (every
    caller of the workspace shares its memories).
    """

    workspace: str
    owner: str | None = None

    @property
    def workspaces(self) -> tuple[str, str]:
        """The workspaces a search covers: this one and the global one."""
        return (self.workspace, GLOBAL_WORKSPACE)


@dataclass(slots=True)
class Memory:
    """One stored memory (a row of `memories`); times are Unix seconds."""

    id: int
    content: str
    type: str
    workspace: str
    owner: str | None
    importance: float
    surprise: float
    created: float
    updated: float
    last_accessed: float | None = None
    access_count: int = 0
    session_id: str | None = None
    turn: int | None = None
    superseded_by: int | None = None
    # Skills only: how often the approach worked and failed since it was distilled.
    successes: int = 0
    failures: int = 0

    @property
    def last_touched(self) -> float:
        """When it was last used or confirmed: what decay and age count from."""
        return max(self.updated, self.last_accessed or 0.0)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Candidate:
    """Something a turn said that may be worth remembering, before the surprise test."""

    content: str
    type: str
    # "user": the user said it; "assistant": a verified statement of the assistant;
    # "explicit": an add by the user (tool, command line, API): no surprise test.
    source: str
    # How strongly the user marked it (0–1): "remember", "always", "!", capitals.
    emphasis: float = 0.0


@dataclass(frozen=True, slots=True)
class Hit:
    """A memory a search found, with the score it ranked by and why."""

    memory: Memory
    score: float
    relevance: float
    keyword_rank: int | None = None
    vector_rank: int | None = None
    similarity: float | None = None
    reasons: dict[str, float] = field(default_factory=dict)
