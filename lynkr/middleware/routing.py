"""Routing: chooses the provider pool for a request and writes it into the request context.

The decision itself is the pure function `routing_rules.decide` (header →
rules → sticky session → tool thresholds → default; see that module). This
middleware gathers its inputs, remembers each session's pool when
`sticky_sessions` is on, and says what it chose: the context gets `pool` and
`route_reason`, the response gets `x-lynkr-route: pool=…; rule=…; reason=…`.

A session that got a server error (5xx) is forgotten, so its next request is
routed afresh instead of staying glued to a failing pool.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from lynkr.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    body_or_answer,
    get_context,
    header_dict,
    replay_receive,
)
from lynkr.middleware.routing_rules import (
    RouteInput,
    decide,
    route_header,
    routing_table,
    session_id,
)

__all__ = ["RoutingMiddleware", "SessionPools"]


class RoutingMiddleware:
    """Writes the chosen pool into the request context; the app behind it calls that pool."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_pool: str | None = None,
        tool_thresholds: Mapping[str, int] | None = None,
        pool_header: str | None = "x-lynkr-pool",
        rules: Sequence[Mapping[str, Any]] | None = None,
        sticky_sessions: bool = False,
        sticky_ttl_seconds: float = 3600,
        sticky_max_sessions: int = 10000,
    ) -> None:
        self.app = app
        self.table = routing_table(
            default_pool=default_pool,
            tool_thresholds=tool_thresholds,
            pool_header=pool_header,
            rules=rules,
            sticky_sessions=sticky_sessions,
        )
        # Shared across requests on purpose: which pool each session was routed to.
        self.sessions = SessionPools(ttl=sticky_ttl_seconds, capacity=sticky_max_sessions)
        self._needs_body = bool(rules or tool_thresholds or sticky_sessions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        context = get_context(scope)
        headers = header_dict(scope)
        named = self.table.pool_header and headers.get(self.table.pool_header)
        body: dict[str, Any] | None = None
        if self._needs_body and not named:
            body = await body_or_answer(scope, receive, send)
            if body is None:
                return
            receive = replay_receive(scope, receive)
        session = session_id(headers, body) if self.table.sticky_sessions else None
        context.session_id = context.session_id or session
        sticky = self.sessions.get(session) if session else None
        decision = decide(self.table, RouteInput(headers, body, sticky_pool=sticky))
        context.pool, context.route_reason = decision.pool, decision.rule
        if session and decision.pool:
            self.sessions.put(session, decision.pool)
        await self.app(scope, receive, self._observe(send, route_header(decision), session))

    def _observe(self, send: Send, route: str, session: str | None) -> Send:
        value = route.encode("latin-1", "replace")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-lynkr-route", value)]
                if session and message["status"] >= 500:
                    self.sessions.forget(session)
            await send(message)

        return wrapped


class SessionPools:
    """Session id → pool, least recently used first out, entries expiring after `ttl` seconds."""

    def __init__(self, *, ttl: float, capacity: int) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, session: str) -> str | None:
        entry = self._entries.get(session)
        if entry is None:
            return None
        pool, stored = entry
        if time.monotonic() - stored > self.ttl:
            del self._entries[session]
            return None
        self._entries.move_to_end(session)
        return pool

    def put(self, session: str, pool: str) -> None:
        self._entries[session] = (pool, time.monotonic())
        self._entries.move_to_end(session)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def forget(self, session: str) -> None:
        self._entries.pop(session, None)

    def __len__(self) -> int:
        return len(self._entries)
