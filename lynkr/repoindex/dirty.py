"""Files known to have changed since the index last looked, per tree (thread-safe).

lynkr sees the edits a model makes: its own file tools' writes, and the `Edit`,
`Write`, `MultiEdit` and `NotebookEdit` calls Claude Code ran since the previous
request (the `tool_use` blocks of the conversation's last assistant message).
Marking those files lets the next lookup refresh exactly them
(`build(paths=…)`, ~10 ms) instead of sweeping the tree. A sweep still runs when
the last one is older than `SWEEP_EVERY` seconds, so a change made outside the
conversation (an editor, a `git checkout`) is seen within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SWEEP_EVERY", "mark", "refresh_plan", "swept"]

SWEEP_EVERY = 30.0
_lock = threading.Lock()
_dirty: dict[str, set[str]] = {}
_last_sweep: dict[str, float] = {}


def _key(root: Path) -> str:
    return str(root.resolve())


def mark(root: Path, paths: Iterable[str]) -> None:
    """Remember that `paths` (absolute, or relative to `root`) changed."""
    wanted = [p for p in paths if isinstance(p, str) and p]
    if wanted:
        with _lock:
            _dirty.setdefault(_key(root), set()).update(wanted)


def swept(root: Path, at: float | None = None) -> None:
    """A full sweep just ran: nothing is pending any more."""
    with _lock:
        key = _key(root)
        _last_sweep[key] = time.monotonic() if at is None else at
        _dirty.pop(key, None)


def refresh_plan(root: Path, now: float | None = None) -> list[str] | None:
    """The paths to refresh, or None when a full sweep is due (never swept, or too long ago).

    Taking the plan clears what was pending."""
    key, now = _key(root), time.monotonic() if now is None else now
    with _lock:
        last = _last_sweep.get(key)
        if last is None or now - last >= SWEEP_EVERY:
            return None
        return sorted(_dirty.pop(key, set()))
