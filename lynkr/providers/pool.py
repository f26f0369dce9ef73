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
  a later failure of that stream becomes an `event: error` frame
  (docs/protocol.md A.9), never a silent switch mid-message.

When no provider could be tried, the answer is 529 `overloaded_error` with
`retry-after` = the soonest breaker probe and a message naming every
provider's state.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import orjson
import structlog

from lynkr.errors import (
    LynkrError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamTimeout,
)
from lynkr.providers.base import MessagesRequest, Provider, ProviderResponse
from lynkr.providers.errors import redacted_stream, secret_forms
from lynkr.resilience import (
    CircuitBreaker,
    ExceptionKind,
    Outcome,
    classify,
    retry_after_from_headers,
)
from lynkr.resilience.plan import FailoverPlan

__all__ = ["ProviderPool"]

_log = structlog.get_logger("lynkr.pool")


@dataclass(frozen=True, slots=True)
class _Tried:
    provider: str
    what: str


Strategy = Literal["ordered", "round_robin", "least_busy", "weighted"]


class ProviderPool:
    """The providers of one pool, in the order its strategy gives, then its fallback list.

    Strategies, for the pool's `providers` (the fallback list always keeps its order):
    `ordered` (the default: the first is preferred, which keeps a session's prompt
    cache on one provider), `round_robin` (each call starts one further along),
    `least_busy` (fewest answers in flight first) and `weighted` (a random order
    drawn by `weights`, heavier first more often).
    """

    def __init__(
        self,
        name: str,
        members: Sequence[Provider],
        fallback: Sequence[Provider] = (),
        *,
        strategy: Strategy = "ordered",
        weights: Mapping[str, float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not members:
            raise ValueError(f"pool '{name}' needs at least one provider")
        self.name = name
        self.strategy = strategy
        self.members = list(members)
        # A provider named in both lists is tried once, at its first place.
        names = {p.name for p in members}
        self.fallback = [p for p in dict.fromkeys(fallback) if p.name not in names]
        self.weights = {p.name: float((weights or {}).get(p.name, 1.0)) for p in members}
        self.in_flight = dict.fromkeys(names, 0)
        self._turn = 0
        self._rng = rng or random.Random()

    @property
    def first(self) -> Provider:
        return self.members[0]

    @property
    def order(self) -> list[Provider]:
        """Every provider of the pool, in configured order (for listings)."""
        return [*self.members, *self.fallback]

    def candidates(self) -> list[Provider]:
        """This call's order of providers to try."""
        members = self.members
        if self.strategy == "round_robin":
            start = self._turn % len(members)
            self._turn += 1
            members = members[start:] + members[:start]
        elif self.strategy == "least_busy":
            members = sorted(members, key=lambda p: self.in_flight.get(p.name, 0))
        elif self.strategy == "weighted":
            members = _weighted_order(members, self.weights, self._rng)
        return [*members, *self.fallback]

    @asynccontextmanager
    async def messages(
        self, request: MessagesRequest, plan: FailoverPlan | None = None
    ) -> AsyncIterator[tuple[Provider, ProviderResponse]]:
        """The answer of the first provider that gives one, and which provider that was."""
        async with AsyncExitStack() as stack:
            if plan is None:
                provider = self.candidates()[0]
                response = await stack.enter_async_context(provider.messages(request))
                self._count(provider, stack)
            else:
                plan.used = True
                provider, response = await self._first_answer(request, plan, stack)
            yield provider, _redacted(provider, response)

    def _count(self, provider: Provider, stack: AsyncExitStack) -> None:
        """Count an answer in flight until its call ends (for `least_busy`)."""
        if provider.name in self.in_flight:
            self.in_flight[provider.name] += 1
            stack.callback(self._done, provider.name)

    def _done(self, name: str) -> None:
        self.in_flight[name] -= 1

    async def _first_answer(
        self, request: MessagesRequest, plan: FailoverPlan, stack: AsyncExitStack
    ) -> tuple[Provider, ProviderResponse]:
        # Adapters rewrite the body they are given; later attempts get a fresh copy. Bytes
        # made here serve as the request's own too: an adapter that changes nothing
        # forwards them instead of serialising the body again.
        if request.raw is None:
            request.raw = orjson.dumps(request.body)
        snapshot = request.raw
        tried: list[_Tried] = []
        last_error: LynkrError | None = None
        attempts = 0
        for provider in self.candidates():
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
                    if outcome == "ignore" and error.status_code not in (402, 429):
                        raise  # the request's own fault: no provider would take it
                    _log.warning(
                        "provider_failed",
                        pool=self.name,
                        provider=provider.name,
                        status=error.status_code,
                        error_type=error.error_type,
                        message=error.message,
                    )
                    tried.append(_Tried(provider.name, _error_text(error)))
                    last_error = error
                    if not await _wait_for_retry(error, retry, plan):
                        break
                    continue
                except BaseException:
                    # Cancelled (the client left) or a bug: the call says nothing about
                    # the provider, but a half-open trial slot must be given back.
                    breaker.record_ignored()
                    raise
                settle = _Settle(breaker, time.monotonic() - started)
                # If the answer is never read (client gone first), the call still ends.
                stack.callback(settle, "ignore")
                response.chunks = _observed(response.chunks, settle)
                self._count(provider, stack)
                return provider, response
        raise self._exhausted(tried, last_error, plan)

    def _exhausted(
        self, tried: list[_Tried], last_error: LynkrError | None, plan: FailoverPlan
    ) -> LynkrError:
        trail = "; ".join(f"{t.provider}: {t.what}" for t in tried)
        if last_error is not None and len({t.provider for t in tried}) == 1:
            # One provider, one story: its own error says best what to do (a 429 keeps
            # its retry-after, a refused credential its hint); the trail tells the rest.
            last_error.message = f"{last_error.message} (pool '{self.name}': {trail})"
            return last_error
        # Every provider unavailable: 529 with the soonest moment one may be back.
        waits = [w for p in self.order if (w := plan.breakers.get(p.name).retry_after()) > 0]
        if last_error is not None:
            hinted = retry_after_from_headers(last_error.headers, now=time.time())
            waits += [hinted] if hinted else []
        retry_after = max(1, math.ceil(min(waits))) if waits else 1
        return UpstreamOverloaded(
            f"No provider of pool '{self.name}' could answer: {trail}. "
            f"Retry in {retry_after} s, or check the providers' status.",
            headers={"retry-after": str(retry_after)},
        )


def _weighted_order(
    members: Sequence[Provider], weights: Mapping[str, float], rng: random.Random
) -> list[Provider]:
    """A random order where each next provider is drawn in proportion to its weight."""
    left = list(members)
    order = []
    while left:
        total = sum(max(weights[p.name], 0.0) for p in left)
        if total <= 0:
            order += left
            break
        pick = rng.uniform(0, total)
        for provider in left:
            pick -= max(weights[provider.name], 0.0)
            if pick <= 0:
                break
        order.append(provider)
        left.remove(provider)
    return order


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
    if error.status_code == 402:
        outcome = "failure"  # the provider account's credit: it will not recover by itself
    breaker.record(outcome, duration)
    return outcome


async def _wait_for_retry(error: LynkrError, retry: int, plan: FailoverPlan) -> bool:
    """Sleep before retrying the same provider; False when it should not be retried."""
    if isinstance(error, UpstreamConnectError) or retry >= plan.retry.retries:
        return False  # nothing listens there: the next provider is the better bet
    retry_after = retry_after_from_headers(error.headers, now=time.time())
    if retry_after is not None and retry_after > plan.retry.max_retry_after:
        return False  # the provider asks for longer than we wait: move on
    pause = plan.retry.delay(retry, retry_after, plan.rng)
    if not plan.deadline.allows(pause):
        return False
    await asyncio.sleep(pause)
    return True


class _Settle:
    """Reports a committed call's outcome to its breaker exactly once."""

    def __init__(self, breaker: CircuitBreaker, time_to_answer: float) -> None:
        self.breaker = breaker
        self.time_to_answer = time_to_answer
        self.done = False

    def __call__(self, outcome: Outcome) -> None:
        if not self.done:
            self.done = True
            # Duration = time to the answer's start: a long answer is not a slow one.
            self.breaker.record(outcome, self.time_to_answer)


def _redacted(provider: Provider, response: ProviderResponse) -> ProviderResponse:
    """The one place every answer passes on its way to the client: the provider's
    credentials, in every form an echoing upstream could give them back, are replaced
    (error frames, a 200 carrying an error, content alike)."""
    secrets = tuple(getattr(provider, "secrets", ()))
    if not secret_forms(secrets):  # a local server's placeholder key: nothing to hide
        return response
    chunks = redacted_stream(response.chunks, secrets)
    return ProviderResponse(response.stream, chunks, response.headers)


async def _observed(chunks: AsyncIterator[bytes], settle: _Settle) -> AsyncIterator[bytes]:
    """The answer's chunks; how the stream ends tells the breaker how the call went.

    An `error` event in the stream is a failure too: translating adapters end a
    broken upstream stream with one (the client needs it) instead of raising, and an
    Anthropic upstream's own mid-stream `overloaded_error` arrives as one.
    """
    errored = False
    try:
        async for chunk in chunks:
            errored = errored or chunk.startswith(b"event: error") or b"\nevent: error" in chunk
            yield chunk
    except UpstreamError:
        settle("failure")
        raise
    settle("failure" if errored else "success")


def _open_text(breaker: CircuitBreaker) -> str:
    wait = breaker.retry_after()
    if breaker.state == "open":
        return f"circuit open (next try in {math.ceil(wait)} s)"
    return "circuit half-open, trial call already running"


def _error_text(error: LynkrError) -> str:
    return f"{error.status_code} {error.error_type}"
