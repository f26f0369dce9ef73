"""Admission control: a bounded number of requests in flight, a bounded queue, a bounded wait.

Two parts, so the decisions stay pure:

- `AdmissionState` decides and counts, with no asyncio: admit while fewer
  than `max_concurrent` are in flight and nobody waits (first come, first
  served), queue while fewer than `max_queue` wait, shed otherwise. Netflix
  concurrency-limits rejects at once when in-flight reaches the limit; the
  short bounded queue in front is Helidon's, so a burst a little over the
  limit waits briefly instead of failing.
- `AdmissionLimiter` is the asyncio face: `await acquire()` returns a `Slot`
  or None (shed). Waiters are futures in a FIFO; a released slot goes to the
  first live waiter, so newcomers cannot overtake. A wait that times out is
  shed; a wait that is cancelled counts as abandoned and takes nothing.

A `Slot` is released exactly once whichever way the request ends: `release()`
is idempotent. Not here: memory headroom. The original lynkr's heap-ratio
shedding fired falsely, RSS needs an OS read on a sampling timer, and with the
32 MB body limit the in-flight bound already bounds request memory; a sampled
RSS or event-loop-lag signal (as Envoy's overload manager uses) can be added
as a separate admission input.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Literal

__all__ = ["AdmissionLimiter", "AdmissionState", "Decision", "Slot"]

Decision = Literal["admit", "queue", "shed"]


class AdmissionState:
    """The limiter's decisions and counters, as plain arithmetic (read these for metrics).

    `in_flight` and `queued` are gauges; `admitted`, `shed`, `abandoned` and
    `released` only grow. Every arrival ends up in `admitted`, `shed` or
    `abandoned`, or is still `queued`; `admitted - released == in_flight`.
    """

    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent!r}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 (no queue) or more, got {max_queue!r}")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.in_flight = 0
        self.queued = 0
        self.admitted = 0
        self.shed = 0
        self.abandoned = 0
        self.released = 0

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.max_concurrent

    def arrive(self) -> Decision:
        """A new request: admit it, queue it, or shed it."""
        if self.has_room and self.queued == 0:
            self.in_flight += 1
            self.admitted += 1
            return "admit"
        if self.queued < self.max_queue:
            self.queued += 1
            return "queue"
        self.shed += 1
        return "shed"

    def grant(self) -> None:
        """A queued request takes a free slot."""
        self.queued -= 1
        self.in_flight += 1
        self.admitted += 1

    def give_up(self, *, timed_out: bool) -> None:
        """A queued request leaves without a slot: shed when its wait ran out, else abandoned."""
        self.queued -= 1
        if timed_out:
            self.shed += 1
        else:
            self.abandoned += 1

    def release(self) -> None:
        """An admitted request ended."""
        self.in_flight -= 1
        self.released += 1

    def snapshot(self) -> dict[str, int]:
        """The counters as plain data, for metrics."""
        return {
            "in_flight": self.in_flight,
            "queued": self.queued,
            "admitted": self.admitted,
            "shed": self.shed,
            "abandoned": self.abandoned,
            "released": self.released,
        }


class Slot:
    """A place among the requests in flight. `release()` gives it back; later calls do nothing."""

    __slots__ = ("_on_release",)

    def __init__(self, on_release: Callable[[], None]) -> None:
        self._on_release: Callable[[], None] | None = on_release

    @property
    def released(self) -> bool:
        return self._on_release is None

    def release(self) -> None:
        on_release, self._on_release = self._on_release, None
        if on_release is not None:
            on_release()


class AdmissionLimiter:
    """`AdmissionState` plus a FIFO of waiting requests. Shared state: one per process or route.

    `max_queue_wait` is in seconds; 0 means never queue (shed at once when full).
    Use from one event loop.
    """

    def __init__(self, *, max_concurrent: int, max_queue: int, max_queue_wait: float) -> None:
        if max_queue_wait < 0:
            raise ValueError(f"max_queue_wait must be 0 or more seconds, got {max_queue_wait!r}")
        self.state = AdmissionState(max_concurrent, max_queue if max_queue_wait > 0 else 0)
        self._max_wait = max_queue_wait
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> Slot | None:
        """A slot, or None when the request is to be shed. Does not suspend unless it queues."""
        decision = self.state.arrive()
        if decision == "admit":
            return Slot(self._release)
        if decision == "shed":
            return None
        return await self._wait()

    async def _wait(self) -> Slot | None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._max_wait):
                await waiter
        except TimeoutError:
            if not _granted(waiter):
                self._leave(waiter, timed_out=True)
                return None
            # Granted just as the wait ran out: the slot is ours, keep it.
        except asyncio.CancelledError:
            if _granted(waiter):
                self._release()
            else:
                self._leave(waiter, timed_out=False)
            raise
        return Slot(self._release)

    def _leave(self, waiter: asyncio.Future[None], *, timed_out: bool) -> None:
        with contextlib.suppress(ValueError):  # already skipped by `_dispatch`
            self._waiters.remove(waiter)
        self.state.give_up(timed_out=timed_out)
        self._dispatch()

    def _release(self) -> None:
        self.state.release()
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to the first live waiters (cancelled ones are dropped on the way)."""
        while self._waiters and self.state.has_room:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.state.grant()


def _granted(waiter: asyncio.Future[None]) -> bool:
    return waiter.done() and not waiter.cancelled()
