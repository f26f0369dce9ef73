"""What the micro benchmarks (`translate_events.py`, `observers.py`) share.

They time code paths driven by hand, without sockets or an event loop: `drive` runs a
coroutine that never really waits, `cpu_per_call` times a callable in CPU seconds, and
`chunked` cuts a stream into the network reads a server sees. `TOKENS` are the text
pieces the streams are made of (spaces, quotes, escapes, newlines, non-ASCII).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

TOKENS = [
    " the",
    " function",
    " returns",
    ' "ok"',
    "\n\n",
    "```python\n",
    "    if",
    " x",
    " ==",
    " 0:",
    " café",
    " —",
    " résumé",
    "’s",
    " `path`",
    "\\n",
    ".",
]


def chunked(events: list[bytes], how: str) -> list[bytes]:
    """The network reads: one event each (`event`), or fixed 4096-byte reads (`4k`)."""
    if how == "event":
        return events
    body = b"".join(events)
    return [body[i : i + 4096] for i in range(0, len(body), 4096)]


def drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never really waits; its result."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the timed path waited on something")


def cpu_per_call(once: Callable[[], Any], *, seconds: float, repeats: int) -> float:
    """CPU seconds of one call of `once`: the minimum over `repeats` batches of ~`seconds`."""
    count, spent = 1, 0.0
    while spent < seconds / 10:
        count *= 2
        started = time.process_time()
        for _ in range(count):
            once()
        spent = time.process_time() - started
    count = max(1, int(count * seconds / spent))
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(count):
            once()
        best = min(best, (time.process_time() - started) / count)
    return best
