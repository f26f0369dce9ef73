"""Failover: circuit breakers, retries and fallback, under one deadline per request.

Two users of one pure breaker state machine:

- In lynkr's stack, this middleware builds a `FailoverPlan` per request — the
  shared breaker registry, a fresh deadline, the retry rules — and publishes
  it in the request context. The provider pool follows it for every upstream
  call: providers in order, open breakers skipped, retries with backoff and
  jitter, then the pool's fallback list, all before the first byte reaches
  the client (see `lynkr.providers.pool`).
- Mounted alone around any ASGI app, nothing consumes the plan, so the
  middleware guards the app itself with one breaker (the route's): 5xx answers and
  exceptions count as failures, and while the breaker is open requests get
  `529 overloaded_error` (503 in the OpenAI shape on OpenAI paths) with
  `retry-after`, without reaching the app.

The breaker registry is shared state on purpose, built in `__init__`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from lynkr.asgi import (
    ASGIApp,
    Receive,
    ResponseStatus,
    Scope,
    Send,
    api_path,
    get_context,
    send_overloaded,
)
from lynkr.resilience import BreakerRegistry, BreakerSettings, CircuitBreaker, Deadline
from lynkr.resilience.plan import FailoverPlan, RetryPolicy

__all__ = ["FailoverMiddleware"]


class FailoverMiddleware:
    """Publishes a failover plan per request; guards a plain app with the route's breaker.

    One breaker for the app, not one per request path: the middleware is mounted
    per route, and a breaker per path let a client grow memory without bound
    with invented paths (6,000 paths held 89 MB).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        retries: int = 1,
        count_429: bool = False,
        backoff_base_seconds: float = 0.5,
        backoff_cap_seconds: float = 8.0,
        max_retry_after_seconds: float = 60.0,
        deadline_seconds: float = 590.0,
        window_seconds: int = 60,
        minimum_calls: int = 10,
        failure_rate_threshold: float = 0.5,
        consecutive_failures: int = 5,
        slow_call_seconds: float = 30.0,
        slow_call_rate_threshold: float = 0.8,
        open_seconds: float = 30.0,
        max_open_seconds: float = 300.0,
        half_open_max_calls: int = 1,
        half_open_successes: int = 2,
        openai_paths: Sequence[str] = ("/v1/chat/completions",),
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries!r}")
        if deadline_seconds <= 0:
            raise ValueError(f"deadline_seconds must be positive, got {deadline_seconds!r}")
        self.app = app
        settings = BreakerSettings(
            window_seconds=window_seconds,
            minimum_calls=minimum_calls,
            failure_rate_threshold=failure_rate_threshold,
            consecutive_failures=consecutive_failures,
            slow_call_seconds=slow_call_seconds,
            slow_call_rate_threshold=slow_call_rate_threshold,
            open_seconds=open_seconds,
            max_open_seconds=max_open_seconds,
            half_open_max_calls=half_open_max_calls,
            half_open_successes=half_open_successes,
        )
        # Shared across requests on purpose: providers' and paths' health.
        self.breakers = BreakerRegistry(settings)
        self.app_breaker = CircuitBreaker("app", settings)
        self.retry = RetryPolicy(
            retries=retries,
            count_429=count_429,
            backoff_base=backoff_base_seconds,
            backoff_cap=backoff_cap_seconds,
            max_retry_after=max_retry_after_seconds,
        )
        self.deadline_seconds = deadline_seconds
        self.openai_paths = tuple(openai_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        plan = FailoverPlan(self.breakers, Deadline(self.deadline_seconds), self.retry)
        get_context(scope).failover = plan
        breaker = self.app_breaker
        if not breaker.allow():
            await self._refuse(scope, send, api_path(scope["path"]), breaker)
            return
        started = time.monotonic()
        watch = ResponseStatus(send)
        outcome = "ignore"
        try:
            await self.app(scope, receive, watch.send)
            status = watch.status
            outcome = "failure" if status >= 500 else "success" if status else "ignore"
        except Exception:
            outcome = "failure"
            raise
        finally:
            # The pool already judged each provider: do not count its answer again here.
            breaker.record("ignore" if plan.used else outcome, time.monotonic() - started)  # type: ignore[arg-type]

    async def _refuse(self, scope: Scope, send: Send, path: str, breaker: CircuitBreaker) -> None:
        wait = max(1, math.ceil(breaker.retry_after()))
        message = (
            f"{path} is failing and its circuit breaker is open; retry in {wait} s. "
            "lynkr stops sending requests to a failing app for a while so it can recover."
        )
        openai = path in self.openai_paths
        headers = {"retry-after": str(wait)}
        await send_overloaded(scope, send, message, headers=headers, openai=openai)
