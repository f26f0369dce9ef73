"""The base of middlewares whose behaviour is not built yet: honest pass-throughs.

They exist so that a `lynkr.yaml` naming them loads today and keeps working
when they become active; the README lists which ones these are.
"""

from __future__ import annotations

from lynkr.asgi import ASGIApp, Receive, Scope, Send

__all__ = ["PassThroughMiddleware"]


class PassThroughMiddleware:
    """Calls the wrapped app unchanged. Takes no options."""

    active = False

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
