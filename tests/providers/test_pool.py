"""The pool's failover rules, over scripted adapters and a fake clock (no sleeping for real)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from lynkr.errors import (
    ClientError,
    LynkrError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamOverloaded,
)
from lynkr.providers.base import MessagesRequest, ProviderResponse
from lynkr.providers.pool import ProviderPool
from lynkr.resilience import BreakerRegistry, BreakerSettings, Deadline, FakeClock
from lynkr.resilience.plan import FailoverPlan, RetryPolicy

pytestmark = pytest.mark.anyio

Step = LynkrError | bytes | Callable[[], AsyncIterator[bytes]]


class Scripted:
    """An adapter whose answers are scripted: an error to raise, or the bytes to stream."""

    def __init__(self, name: str, *steps: Step) -> None:
        self.name = name
        self.model = f"{name}-model"
        self.steps = list(steps)
        self.bodies: list[dict[str, Any]] = []

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def count_tokens(self, request: MessagesRequest) -> int | None:
        return None

    @asynccontextmanager
    async def messages(self, request: MessagesRequest) -> AsyncIterator[ProviderResponse]:
        self.bodies.append(dict(request.body))
        request.body["model"] = self.model  # adapters rewrite the body they are given
        step = self.steps.pop(0)
        if isinstance(step, LynkrError):
            raise step
        chunks = step() if callable(step) else _once(step)
        yield ProviderResponse(True, chunks)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def plan(clock: FakeClock, *, retries: int = 1, deadline: float = 60) -> FailoverPlan:
    settings = BreakerSettings(consecutive_failures=2, minimum_calls=10, open_seconds=30)
    return FailoverPlan(
        BreakerRegistry(settings, clock=clock),
        Deadline(deadline, clock),
        RetryPolicy(retries=retries, backoff_base=0.001, backoff_cap=0.001),
        rng=random.Random(7),
    )


def request() -> MessagesRequest:
    return MessagesRequest(body={"model": "claude-x", "messages": []}, raw=None)


async def call(pool: ProviderPool, failover: FailoverPlan | None) -> tuple[str, bytes]:
    async with pool.messages(request(), failover) as (provider, response):
        return provider.name, b"".join([c async for c in response.chunks])


def overloaded() -> UpstreamOverloaded:
    return UpstreamOverloaded("provider 'a' answered HTTP 529: Overloaded", provider="a")


async def test_without_a_plan_only_the_first_provider_is_called() -> None:
    a, b = Scripted("a", overloaded()), Scripted("b", b"ok")
    with pytest.raises(UpstreamOverloaded):
        await call(ProviderPool("p", [a], [b]), None)
    assert b.bodies == []


async def test_retry_then_fallback_each_with_the_original_body() -> None:
    clock = FakeClock()
    a, b = Scripted("a", overloaded(), overloaded()), Scripted("b", b"answer")
    failover = plan(clock)
    assert await call(ProviderPool("p", [a], [b]), failover) == ("b", b"answer")
    # Every attempt saw the client's body, not the one the previous adapter rewrote.
    assert [body["model"] for body in a.bodies + b.bodies] == ["claude-x"] * 3
    assert failover.breakers.get("a").state == "open"  # two failures in a row
    assert failover.breakers.get("b").state == "closed"
    assert failover.used


async def test_a_refused_connection_is_not_retried() -> None:
    refused = UpstreamConnectError("could not connect to provider 'a'", provider="a")
    a, b = Scripted("a", refused, b"never"), Scripted("b", b"fallback")
    assert await call(ProviderPool("p", [a, b]), plan(FakeClock())) == ("b", b"fallback")
    assert len(a.bodies) == 1


async def test_an_error_the_request_caused_is_returned_at_once() -> None:
    a, b = Scripted("a", ClientError("max_tokens: too large")), Scripted("b", b"never")
    with pytest.raises(ClientError, match="max_tokens"):
        await call(ProviderPool("p", [a], [b]), plan(FakeClock()))
    assert b.bodies == []


async def test_open_breakers_are_skipped_without_io_and_answer_529() -> None:
    clock = FakeClock()
    failover = plan(clock)
    for name in ("a", "b"):
        breaker = failover.breakers.get(name)
        for _ in range(2):
            assert breaker.allow()
            breaker.record_failure(0.1)
    a, b = Scripted("a", b"x"), Scripted("b", b"y")
    clock.advance(10)
    with pytest.raises(UpstreamOverloaded) as caught:
        await call(ProviderPool("complex", [a], [b]), failover)
    error = caught.value
    assert error.status_code == 529
    assert error.headers == {"retry-after": "20"}
    assert "pool 'complex'" in error.message
    assert "a: circuit open (next try in 20 s)" in error.message
    assert a.bodies == b.bodies == []


async def test_one_provider_failing_keeps_its_own_error() -> None:
    credential = UpstreamError("provider 'a' refused lynkr's credential (HTTP 401)", provider="a")
    a = Scripted("a", credential, credential)
    with pytest.raises(UpstreamError) as caught:
        await call(ProviderPool("p", [a]), plan(FakeClock()))
    assert caught.value.status_code == 502
    assert "refused lynkr's credential" in caught.value.message
    assert "pool 'p': a: 502 api_error; a: 502 api_error" in caught.value.message


async def test_an_expired_deadline_stops_failing_over() -> None:
    clock = FakeClock()
    failover = plan(clock, deadline=5)
    clock.advance(6)
    a = Scripted("a", b"x")
    with pytest.raises(UpstreamOverloaded, match="deadline passed"):
        await call(ProviderPool("p", [a]), failover)


async def test_a_stream_cut_after_commit_counts_as_a_failure_and_is_not_retried() -> None:
    async def cut() -> AsyncIterator[bytes]:
        yield b"event: message_start\n\n"
        raise UpstreamError("provider 'a' closed the connection", provider="a")

    clock = FakeClock()
    failover = plan(clock)
    a, b = Scripted("a", cut), Scripted("b", b"never")
    with pytest.raises(UpstreamError, match="closed the connection"):
        await call(ProviderPool("p", [a], [b]), failover)
    assert b.bodies == []
    assert failover.breakers.get("a").snapshot()["consecutive_failures"] == 1


async def test_a_stream_ended_by_an_error_event_counts_as_a_failure() -> None:
    """Translating adapters end a broken upstream stream with an `error` event, and an
    Anthropic upstream's mid-stream overload arrives as one: neither is a success."""

    async def errored() -> AsyncIterator[bytes]:
        yield b"event: message_start\ndata: {}\n\n"
        yield b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'

    async def fine() -> AsyncIterator[bytes]:
        yield b'event: content_block_delta\ndata: {"text":"\\nevent: error"}\n\n'

    failover = plan(FakeClock())
    a = Scripted("a", errored, fine)
    await call(ProviderPool("p", [a]), failover)
    assert failover.breakers.get("a").snapshot()["consecutive_failures"] == 1
    await call(ProviderPool("p", [a]), failover)  # the words in model text are not an event
    assert failover.breakers.get("a").snapshot()["consecutive_failures"] == 0


async def test_a_provider_s_credentials_never_leave_the_pool() -> None:
    key = "sk-ant-api03-POOLCANARY0123456789"
    a = Scripted("a", f'{{"echo": "x-api-key: {key}"}}'.encode())
    a.secrets = (key,)  # type: ignore[attr-defined]
    _, body = await call(ProviderPool("p", [a]), plan(FakeClock()))
    assert key not in body.decode() and b"***" in body


async def test_an_answer_never_read_still_settles_the_breaker() -> None:
    clock = FakeClock()
    failover = plan(clock)
    breaker = failover.breakers.get("a")
    for _ in range(2):
        breaker.allow()
        breaker.record_failure(0.1)
    clock.advance(31)  # half-open: one trial call allowed
    a = Scripted("a", b"unread")

    async with ProviderPool("p", [a]).messages(request(), failover):
        pass  # the client went away before anything was relayed

    assert breaker.allow()  # the trial slot was given back


async def test_round_robin_starts_one_further_each_call() -> None:
    a, b, c = (Scripted(n, *[b"ok"] * 3) for n in "abc")
    pool = ProviderPool("p", [a, b, c], strategy="round_robin")
    assert [(await call(pool, None))[0] for _ in range(4)] == ["a", "b", "c", "a"]


async def test_round_robin_fails_over_to_the_next_in_turn() -> None:
    a, b = Scripted("a", b"ok", overloaded(), overloaded()), Scripted("b", b"ok", b"ok")
    pool = ProviderPool("p", [a, b], strategy="round_robin")
    failover = plan(FakeClock(), retries=0)
    assert (await call(pool, failover))[0] == "a"
    assert (await call(pool, failover))[0] == "b"
    assert (await call(pool, failover))[0] == "b"  # a's turn: it fails, b answers


async def test_least_busy_prefers_the_provider_with_fewer_answers_in_flight() -> None:
    a, b = Scripted("a", b"x", b"y"), Scripted("b", b"z")
    pool = ProviderPool("p", [a, b], strategy="least_busy")

    async with (
        pool.messages(request(), None) as (first, _),
        pool.messages(request(), None) as (second, _),
    ):
        chosen = [first.name, second.name]
    assert pool.in_flight == {"a": 0, "b": 0}  # both calls ended
    assert chosen == ["a", "b"]


def test_weighted_order_follows_the_weights() -> None:
    members = [Scripted("light"), Scripted("heavy")]
    pool = ProviderPool(
        "p", members, strategy="weighted", weights={"heavy": 9}, rng=random.Random(3)
    )
    firsts = [pool.candidates()[0].name for _ in range(400)]
    assert 0.8 < firsts.count("heavy") / 400 < 0.97
    assert {p.name for p in pool.candidates()} == {"light", "heavy"}


def test_fallback_keeps_its_order_and_is_never_a_member_twice() -> None:
    a, b, c = Scripted("a"), Scripted("b"), Scripted("c")
    pool = ProviderPool("p", [a, b], [b, c], strategy="round_robin")
    assert [p.name for p in pool.candidates()] == ["a", "b", "c"]
    assert [p.name for p in pool.candidates()] == ["b", "a", "c"]


async def test_a_cancelled_trial_call_gives_its_half_open_slot_back() -> None:
    clock = FakeClock()
    failover = plan(clock)
    breaker = failover.breakers.get("a")
    for _ in range(2):
        breaker.allow()
        breaker.record_failure(0.1)
    clock.advance(31)  # half-open: one trial call at a time
    calling = asyncio.Event()

    class Hanging(Scripted):
        @asynccontextmanager
        async def messages(self, request: MessagesRequest) -> AsyncIterator[ProviderResponse]:
            calling.set()
            await asyncio.sleep(3600)  # waiting for headers when the client leaves
            yield ProviderResponse(True, _once(b""))

    task = asyncio.ensure_future(call_async(ProviderPool("p", [Hanging("a")]), failover))
    await calling.wait()  # the trial call holds the half-open slot
    assert breaker.state == "half_open" and not breaker.allow()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert breaker.state == "half_open"
    assert breaker.allow()  # the slot was given back: the next trial may run


async def call_async(pool: ProviderPool, failover: FailoverPlan | None) -> None:
    async with pool.messages(request(), failover):
        pass
