"""A pool of providers and how one request fails over across them.

Without a failover plan the pool calls its first provider, as configured.
With one (published by the failover middleware), each upstream call goes
through the pool's providers in order, then its fallback list:

- a provider whose breaker is open is skipped without any I/O;
- a failure (connection error, timeout, 5xx/529, malformed answer, 429 when
  counted) is recorded on the provider's breaker, retried on the same provider
  with backoff and full jitter (honouring `retry-after`) up to `retries` times
  — connection errors go straight to the next provider — and then the next
  provider is tried;
- an error the request caused (other 4xx) is returned at once: another
  provider would refuse it too;
- everything happens before the first byte reaches the client, under the
  request's one deadline. Once a provider answered 200 the pool is committed:
  a later failure of that stream becomes an `event: error` frame (A.9), never
  a silent switch mid-message.

When no provider could be tried, the answer is 529 `overloaded_error` with
`retry-after` = the soonest breaker probe and a message naming every
provider's state.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import orjson

from lynkr.errors import (
    LynkrError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamTimeout,
)
from lynkr.providers.base import MessagesRequest, Provider, ProviderResponse
from lynkr.resilience import CircuitBreaker, ExceptionKind, Outcome, classify
from lynkr.resilience.plan import FailoverPlan

__all__ = ["ProviderPool"]


@dataclass(frozen=True, slots=True)
class _Tried:
    provider: str
    what: str


class ProviderPool:
    """The providers of one pool, in order of preference, then its fallback list."""

    def __init__(self, name: str, members: Sequence[Provider], fallback: Sequence[Provider] = ()):
        if not members:
            raise ValueError(f"pool '{name}' needs at least one provider")
        self.name = name
        # A provider named in both lists is tried once, at its first place.
        by_name: dict[str, Provider] = {}
        for provider in (*members, *fallback):
            by_name.setdefault(provider.name, provider)
        self.order = list(by_name.values())

    @property
    def first(self) -> Provider:
        return self.order[0]

    @asynccontextmanager
    async def messages(
        self, request: MessagesRequest, plan: FailoverPlan | None = None
    ) -> AsyncIterator[tuple[Provider, ProviderResponse]]:
        """The answer of the first provider that gives one, and which provider that was."""
        if plan is None:
            async with self.first.messages(request) as response:
                yield self.first, response
            return
        plan.used = True
        async with AsyncExitStack() as stack:
            provider, response = await self._first_answer(request, plan, stack)
            yield provider, response

    async def _first_answer(
        self, request: MessagesRequest, plan: FailoverPlan, stack: AsyncExitStack
    ) -> tuple[Provider, ProviderResponse]:
        # Adapters rewrite the body they are given; later attempts get a fresh copy.
        snapshot = request.raw if request.raw is not None else orjson.dumps(request.body)
        tried: list[_Tried] = []
        last_error: LynkrError | None = None
        attempts = 0
        for provider in self.order:
            breaker = plan.breakers.get(provider.name)
            for retry in range(plan.retry.retries + 1):
                if plan.deadline.expired:
                    tried.append(_Tried(provider.name, "skipped: the request's deadline passed"))
                    break
                if not breaker.allow():
                    tried.append(_Tried(provider.name, _open_text(breaker)))
                    break
                attempt = request if attempts == 0 else _fresh(request, snapshot)
                attempts += 1
                started = time.monotonic()
                try:
                    response = await stack.enter_async_context(provider.messages(attempt))
                except LynkrError as error:
                    outcome = _record(breaker, error, plan, time.monotonic() - started)
                    if outcome == "ignore" and error.status_code != 429:
                        raise  # the request's own fault: no provider would take it
                    tried.append(_Tried(provider.name, _error_text(error)))
                    last_error = error
                    if not await _wait_for_retry(error, retry, plan):
                        break
                    continue
                settle = _Settle(breaker, time.monotonic() - started)
                # If the answer is never read (client gone first), the call still ends.
                stack.callback(settle, "ignore")
                response.chunks = _observed(response.chunks, settle)
                return provider, response
        raise self._exhausted(tried, last_error, plan)

    def _exhausted(
        self, tried: list[_Tried], last_error: LynkrError | None, plan: FailoverPlan
    ) -> LynkrError:
        trail = "; ".join(f"{t.provider}: {t.what}" for t in tried)
        if last_error is not None and len({t.provider for t in tried}) == 1:
            last_error.message = f"{last_error.message} (pool '{self.name}': {trail})"
            return last_error
        waits = [w for p in self.order if (w := plan.breakers.get(p.name).retry_after()) > 0]
        retry_after = max(1, math.ceil(min(waits))) if waits else 1
        return UpstreamOverloaded(
            f"No provider of pool '{self.name}' could answer: {trail}. "
            f"Retry in {retry_after} s, or check the providers' status.",
            headers={"retry-after": str(retry_after)},
        )


def _fresh(request: MessagesRequest, snapshot: bytes) -> MessagesRequest:
    return MessagesRequest(
        body=orjson.loads(snapshot),
        raw=request.raw,
        betas=request.betas,
        anthropic_version=request.anthropic_version,
    )


def _kind(error: LynkrError) -> ExceptionKind | None:
    if isinstance(error, UpstreamConnectError):
        return "connect"
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    return None


def _record(
    breaker: CircuitBreaker, error: LynkrError, plan: FailoverPlan, duration: float
) -> Outcome:
    """Tell the breaker how the call failed; lynkr's status already says whose fault it was."""
    kind = _kind(error)
    outcome = classify(error.status_code, exception_kind=kind, count_429=plan.retry.count_429)
    breaker.record(outcome, duration)
    return outcome


async def _wait_for_retry(error: LynkrError, retry: int, plan: FailoverPlan) -> bool:
    """Sleep before retrying the same provider; False when it should not be retried."""
    if isinstance(error, UpstreamConnectError) or retry >= plan.retry.retries:
        return False  # nothing listens there: the next provider is the better bet
    retry_after = _seconds(error.headers.get("retry-after"))
    pause = plan.retry.delay(retry, retry_after, plan.rng)
    if not plan.deadline.allows(pause):
        return False
    await asyncio.sleep(pause)
    return True


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _Settle:
    """Reports a committed call's outcome to its breaker exactly once."""

    def __init__(self, breaker: CircuitBreaker, time_to_answer: float) -> None:
        self.breaker = breaker
        self.time_to_answer = time_to_answer
        self.done = False

    def __call__(self, outcome: Outcome) -> None:
        if not self.done:
            self.done = True
            # Duration = time to the answer's start (§8): a long answer is not a slow one.
            self.breaker.record(outcome, self.time_to_answer)


async def _observed(chunks: AsyncIterator[bytes], settle: _Settle) -> AsyncIterator[bytes]:
    """The answer's chunks; how the stream ends tells the breaker how the call went."""
    try:
        async for chunk in chunks:
            yield chunk
    except UpstreamError:
        settle("failure")
        raise
    settle("success")


def _open_text(breaker: CircuitBreaker) -> str:
    wait = breaker.retry_after()
    if breaker.state == "open":
        return f"circuit open (next try in {math.ceil(wait)} s)"
    return "circuit half-open, trial call already running"


def _error_text(error: LynkrError) -> str:
    return f"{error.status_code} {error.error_type}"
