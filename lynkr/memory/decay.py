"""Decay and pruning: pure arithmetic over timestamps, with the clock passed in.

Importance halves every `half_life_days` a memory goes unused (`decayed`);
what `prune_plan` deletes is every memory untouched for `max_age_days`, then,
beyond `max_count`, the least valuable first: superseded memories, then the
lowest decayed importance, then the oldest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DAY", "PruneRow", "decayed", "prune_plan", "recency"]

DAY = 86400.0


def recency(last_touched: float, now: float, half_life_days: float) -> float:
    """1 for a memory used just now, ½ after one half-life, ¼ after two…"""
    age_days = max(0.0, now - last_touched) / DAY
    return float(0.5 ** (age_days / half_life_days))


def decayed(importance: float, last_touched: float, now: float, half_life_days: float) -> float:
    """`importance` as it stands after the time unused since `last_touched`."""
    return importance * recency(last_touched, now, half_life_days)


@dataclass(frozen=True, slots=True)
class PruneRow:
    """What pruning needs of a memory."""

    id: int
    importance: float
    last_touched: float
    superseded: bool = False


def prune_plan(
    rows: Sequence[PruneRow],
    *,
    now: float,
    max_age_days: float,
    max_count: int,
    half_life_days: float,
) -> list[int]:
    """The ids to delete, oldest-by-age first, then the least valuable beyond `max_count`."""
    cutoff = now - max_age_days * DAY
    expired = [row.id for row in rows if row.last_touched < cutoff]
    gone = set(expired)
    kept = [row for row in rows if row.id not in gone]
    excess = len(kept) - max_count
    if excess <= 0:
        return expired

    def value(row: PruneRow) -> tuple[int, float, float]:
        worth = decayed(row.importance, row.last_touched, now, half_life_days)
        return (0 if row.superseded else 1, worth, row.last_touched)

    return expired + [row.id for row in sorted(kept, key=value)[:excess]]
