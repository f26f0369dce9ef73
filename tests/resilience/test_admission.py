"""Admission: the pure decisions, then the asyncio limiter under bursts, timeouts and cancels."""

from __future__ import annotations

import asyncio
import time

import pytest

from lynkr.resilience import AdmissionLimiter, AdmissionState, Slot

pytestmark = pytest.mark.anyio


def consistent(state: AdmissionState) -> None:
    assert state.admitted - state.released == state.in_flight
    assert 0 <= state.in_flight <= state.max_concurrent
    assert 0 <= state.queued <= state.max_queue


# --------------------------------------------------------------------------- pure state


def test_state_admits_then_queues_then_sheds() -> None:
    state = AdmissionState(max_concurrent=2, max_queue=1)
    assert [state.arrive() for _ in range(4)] == ["admit", "admit", "queue", "shed"]
    assert state.snapshot() == {
        "in_flight": 2,
        "queued": 1,
        "admitted": 2,
        "shed": 1,
        "abandoned": 0,
        "released": 0,
    }


def test_state_newcomers_do_not_overtake_the_queue() -> None:
    state = AdmissionState(max_concurrent=1, max_queue=2)
    assert state.arrive() == "admit"
    assert state.arrive() == "queue"
    state.release()
    assert state.has_room
    assert state.arrive() == "queue"  # someone is already waiting for that slot


def test_state_grant_moves_a_waiter_in() -> None:
    state = AdmissionState(max_concurrent=1, max_queue=1)
    state.arrive()
    state.arrive()
    state.release()
    state.grant()
    assert (state.in_flight, state.queued, state.admitted, state.released) == (1, 0, 2, 1)


def test_state_giving_up_is_shed_on_timeout_else_abandoned() -> None:
    state = AdmissionState(max_concurrent=1, max_queue=2)
    state.arrive()
    state.arrive()
    state.arrive()
    state.give_up(timed_out=True)
    state.give_up(timed_out=False)
    assert (state.queued, state.shed, state.abandoned) == (0, 1, 1)


@pytest.mark.parametrize(
    ("max_concurrent", "max_queue", "message"),
    [(0, 0, "max_concurrent must be at least 1, got 0"), (1, -1, "max_queue must be 0")],
)
def test_state_refuses_nonsense(max_concurrent: int, max_queue: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdmissionState(max_concurrent, max_queue)


def test_limiter_refuses_a_negative_wait() -> None:
    with pytest.raises(ValueError, match="max_queue_wait must be 0 or more"):
        AdmissionLimiter(max_concurrent=1, max_queue=1, max_queue_wait=-1)


# --------------------------------------------------------------------------- slots


def test_a_slot_releases_exactly_once() -> None:
    calls: list[int] = []
    slot = Slot(lambda: calls.append(1))
    assert not slot.released
    slot.release()
    slot.release()
    assert slot.released
    assert calls == [1]


# --------------------------------------------------------------------------- limiter


async def hold(limiter: AdmissionLimiter, gate: asyncio.Event, done: list[str]) -> None:
    """A request: take a slot or be shed; if admitted, work until the gate opens."""
    slot = await limiter.acquire()
    if slot is None:
        done.append("shed")
        return
    try:
        await gate.wait()
        done.append("ok")
    finally:
        slot.release()


async def test_burst_of_ten_times_capacity_sheds_the_excess_at_once() -> None:
    limiter = AdmissionLimiter(max_concurrent=4, max_queue=0, max_queue_wait=0)
    gate, done = asyncio.Event(), list[str]()
    tasks = [asyncio.create_task(hold(limiter, gate, done)) for _ in range(40)]
    await asyncio.sleep(0)
    # Every excess request was answered while the admitted ones still work.
    assert done == ["shed"] * 36
    assert limiter.state.in_flight == 4
    gate.set()
    await asyncio.gather(*tasks)
    assert done.count("ok") == 4
    assert limiter.state.snapshot() == {
        "in_flight": 0,
        "queued": 0,
        "admitted": 4,
        "shed": 36,
        "abandoned": 0,
        "released": 4,
    }


async def test_burst_with_a_queue_serves_the_queue_in_order() -> None:
    limiter = AdmissionLimiter(max_concurrent=2, max_queue=3, max_queue_wait=30)
    order: list[int] = []

    async def request(number: int) -> None:
        slot = await limiter.acquire()
        if slot is None:
            return
        order.append(number)
        await asyncio.sleep(0)
        slot.release()

    await asyncio.gather(*(request(n) for n in range(20)))
    assert order == [0, 1, 2, 3, 4]
    state = limiter.state
    assert (state.admitted, state.shed, state.in_flight, state.queued) == (5, 15, 0, 0)


async def test_a_queued_request_is_shed_when_its_wait_runs_out() -> None:
    limiter = AdmissionLimiter(max_concurrent=1, max_queue=1, max_queue_wait=0.01)
    held = await limiter.acquire()
    assert held is not None
    assert await limiter.acquire() is None
    assert (limiter.state.shed, limiter.state.queued) == (1, 0)
    held.release()
    assert await limiter.acquire() is not None  # the timed-out waiter took nothing


async def test_zero_wait_means_no_queue() -> None:
    limiter = AdmissionLimiter(max_concurrent=1, max_queue=10, max_queue_wait=0)
    assert await limiter.acquire() is not None
    assert await limiter.acquire() is None
    assert limiter.state.max_queue == 0


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    limiter = AdmissionLimiter(max_concurrent=1, max_queue=2, max_queue_wait=30)
    held = await limiter.acquire()
    assert held is not None
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.state.queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (limiter.state.queued, limiter.state.abandoned) == (0, 1)
    held.release()
    assert limiter.state.in_flight == 0  # nobody was handed the slot
    consistent(limiter.state)


async def test_a_waiter_cancelled_after_its_grant_passes_the_slot_on() -> None:
    limiter = AdmissionLimiter(max_concurrent=1, max_queue=2, max_queue_wait=30)
    held = await limiter.acquire()
    assert held is not None
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    held.release()  # the slot is handed to `first`…
    first.cancel()  # …which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    slot = await second
    assert slot is not None
    assert limiter.state.in_flight == 1
    slot.release()
    assert limiter.state.snapshot()["released"] == 3
    consistent(limiter.state)


async def test_a_grant_that_races_the_timeout_keeps_the_slot() -> None:
    limiter = AdmissionLimiter(max_concurrent=1, max_queue=1, max_queue_wait=0.001)
    held = await limiter.acquire()
    assert held is not None
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    # Let the waiter's timeout fall due without running the loop, so the
    # grant below and the timeout land in the same loop iteration.
    time.sleep(0.01)  # noqa: ASYNC251 -- blocking on purpose, see above
    await asyncio.sleep(0)
    held.release()
    slot = await waiter
    assert slot is not None
    assert limiter.state.in_flight == 1
    slot.release()
    consistent(limiter.state)


async def test_slots_are_released_however_the_holder_ends() -> None:
    limiter = AdmissionLimiter(max_concurrent=3, max_queue=0, max_queue_wait=0)

    async def fails() -> None:
        slot = await limiter.acquire()
        assert slot is not None
        try:
            raise RuntimeError("boom")
        finally:
            slot.release()

    async def waits_for_ever() -> None:
        slot = await limiter.acquire()
        assert slot is not None
        try:
            await asyncio.Event().wait()
        finally:
            slot.release()

    with pytest.raises(RuntimeError):
        await fails()
    task = asyncio.create_task(waits_for_ever())
    await asyncio.sleep(0)
    assert limiter.state.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.state.snapshot()["in_flight"] == 0
    assert limiter.state.released == 2
