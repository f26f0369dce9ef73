"""Client authentication: only callers holding one of the configured keys get through.

Accepts the key the way Claude Code and the Anthropic SDKs send it, as
`x-api-key: KEY` or `Authorization: Bearer KEY` (docs/protocol.md A.3, case 44), and
compares in constant time. The client's credential never travels further than
this: provider adapters send the provider's own key.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from lynkr.asgi import ASGIApp, Receive, Scope, Send, api_path, get_context, header, send_error
from lynkr.errors import AuthenticationError

__all__ = ["AuthMiddleware"]


class AuthMiddleware:
    """Answers 401 `authentication_error` unless the request carries one of `keys`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Sequence[str],
        exempt_paths: Sequence[str] = ("/", "/health", "/ready"),
    ) -> None:
        cleaned = [key for key in keys if key]
        if not cleaned:
            raise ValueError(
                "auth needs at least one non-empty key in `keys` "
                "(e.g. keys: ['${LYNKR_CLIENT_KEY}'] with that variable set)"
            )
        self.app = app
        self._keys = [key.encode() for key in cleaned]
        # Probes answer without a key: Claude Code's start-up HEAD / carries none (A.2).
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or api_path(scope["path"]) in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self._accepts(scope):
            await self.app(scope, receive, send)
            return
        error = AuthenticationError(
            "Missing or invalid API key. Send the key lynkr is configured with as "
            "`x-api-key: KEY` or `Authorization: Bearer KEY` (Claude Code: set "
            "ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN)."
        )
        await send_error(send, error, request_id=get_context(scope).request_id)

    def _accepts(self, scope: Scope) -> bool:
        offered = []
        api_key = header(scope, b"x-api-key")
        if api_key:
            offered.append(api_key.strip())
        authorization = header(scope, b"authorization")
        if authorization and authorization[:7].lower() == "bearer ":
            offered.append(authorization[7:].strip())
        # Compare against every key without stopping early: timing tells nothing.
        matched = False
        for candidate in offered:
            encoded = candidate.encode()
            for key in self._keys:
                matched |= hmac.compare_digest(encoded, key)
        return matched
