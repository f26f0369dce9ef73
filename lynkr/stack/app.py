"""`LynkrApp`: the served ASGI app — routes requests to their stacks and owns the lifespan.

Routes from lynkr.yaml are matched by path prefix, in order: this is the hot
path, so it is a plain loop over a few prefixes. Everything else goes to the
`fallback` app (models, probes, sessions, later the admin endpoints).

The lifespan opens every resource in order — stores, then provider clients —
and closes what did open, newest first, when the server stops or when a later
open fails (one `AsyncExitStack`), so a half-started server leaks nothing.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from lynkr.asgi import ASGIApp, Receive, Scope, Send, api_path, get_context
from lynkr.providers.base import Provider

__all__ = ["Lifetime", "LynkrApp", "Route", "path_matches"]


@dataclass(frozen=True, slots=True)
class Lifetime:
    """A resource the server opens at startup (`open`, optional) and closes at shutdown."""

    name: str
    close: Callable[[], Awaitable[None]]
    open: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One `routes:` entry built: its path prefix, its app, its middleware names in order."""

    path: str
    app: ASGIApp
    names: tuple[str, ...]

    def matches(self, path: str) -> bool:
        return path_matches(self.path, path)


def path_matches(route_path: str, path: str) -> bool:
    """A route serves its path and every path below it."""
    return path == route_path or path.startswith(route_path.rstrip("/") + "/")


class LynkrApp:
    """The served ASGI app: routes requests and owns the lifespan of stores and providers."""

    def __init__(
        self,
        *,
        routes: Sequence[Route],
        fallback: ASGIApp,
        providers: Mapping[str, Provider],
        lifetimes: Sequence[Lifetime] = (),
    ) -> None:
        self.routes = list(routes)
        self.fallback = fallback
        self.providers = providers
        self.lifetimes = [
            *lifetimes,
            *(Lifetime(f"provider {n}", p.aclose, p.open) for n, p in providers.items()),
        ]
        self.ready = False
        self._exit_stack: contextlib.AsyncExitStack | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        get_context(scope)  # the request's clock starts here, before any layer runs
        path = api_path(scope.get("path", "/"))
        for route in self.routes:
            if route.matches(path):
                await route.app(scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    # `lynkr serve` sets it: a process that serves one app for its whole life.
    freeze_after_startup = False

    async def startup(self) -> None:
        stack = contextlib.AsyncExitStack()
        try:
            for lifetime in self.lifetimes:
                if lifetime.open is not None:
                    await lifetime.open()
                stack.push_async_callback(lifetime.close)
        except BaseException:
            await stack.aclose()  # whatever did open is closed again
            raise
        self._exit_stack = stack
        if self.freeze_after_startup:
            # Everything built so far (modules, config, the embedding model's tokenizer)
            # lives as long as the server: out of the cyclic collector's sight, a full
            # collection no longer walks it again and again while requests are served
            # (memory on: +0.4-0.9 → ±0.1-0.3 ms of CPU per request, benchmarks/README.md).
            gc.freeze()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        if self._exit_stack is not None:
            await self._exit_stack.aclose()
            self._exit_stack = None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
