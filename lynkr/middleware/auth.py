"""Client authentication: only callers holding one of the configured keys get through.

Accepts the key the way Claude Code and the Anthropic SDKs send it, as
`x-api-key: KEY` or `Authorization: Bearer KEY` (docs/protocol.md A.3, case 44), and
compares in constant time. The client's credential never travels further than
this: provider adapters send the provider's own key.

Each key is a string or `{name, key}`. The matching key's name becomes the
request's `caller`: what a caller stores (its sessions, its cache entries) is
scoped to it, and logs name it. A key given without a name is named by a short
digest of it (`key-3f2a…`), stable across restarts and useless to an attacker.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from lynkr.asgi import ASGIApp, Receive, Scope, Send, api_path, get_context, header, send_error
from lynkr.errors import AuthenticationError

__all__ = ["AuthMiddleware", "key_name", "named_keys"]


class AuthMiddleware:
    """Answers 401 `authentication_error` unless the request carries one of `keys`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Sequence[str | Mapping[str, str]],
        exempt_paths: Sequence[str] = ("/", "/health", "/ready"),
    ) -> None:
        named = named_keys(keys)
        if not named:
            raise ValueError(
                "auth needs at least one non-empty key in `keys` "
                "(e.g. keys: ['${LYNKR_CLIENT_KEY}'] with that variable set)"
            )
        self.app = app
        self._keys = [(key.encode(), name) for key, name in named]
        # Probes answer without a key: Claude Code's start-up HEAD / carries none (A.2).
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or api_path(scope["path"]) in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        caller = self._caller(scope)
        if caller is not None:
            get_context(scope).caller = caller
            await self.app(scope, receive, send)
            return
        error = AuthenticationError(
            "Missing or invalid API key. Send the key lynkr is configured with as "
            "`x-api-key: KEY` or `Authorization: Bearer KEY` (Claude Code: set "
            "ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN)."
        )
        await send_error(send, error, request_id=get_context(scope).request_id)

    def _caller(self, scope: Scope) -> str | None:
        """The name of the key the request carries; None when it carries none of them."""
        offered = []
        api_key = header(scope, b"x-api-key")
        if api_key:
            offered.append(api_key.strip())
        authorization = header(scope, b"authorization")
        if authorization and authorization[:7].lower() == "bearer ":
            offered.append(authorization[7:].strip())
        # Compare against every key without stopping early: timing tells nothing.
        matched = None
        for candidate in offered:
            encoded = candidate.encode()
            for key, name in self._keys:
                if hmac.compare_digest(encoded, key):
                    matched = name
        return matched


def named_keys(keys: Sequence[str | Mapping[str, str]]) -> list[tuple[str, str]]:
    """(key, name) for each configured key; a bare key is named by a digest of it."""
    named = []
    for entry in keys:
        if isinstance(entry, Mapping):
            key, name = entry.get("key", ""), entry.get("name", "")
        else:
            key, name = entry, ""
        if not key:
            continue
        named.append((key, name or key_name(key)))
    names = [name for _, name in named]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"auth: key name {repeated[0]!r} is used twice; give every key its own name "
            "(the name decides whose sessions and cache entries a request sees)"
        )
    return named


def key_name(key: str) -> str:
    """The name of an unnamed key: a digest prefix, stable and not reversible."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]
