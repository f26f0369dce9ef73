"""The response cache (exact-match, LRU + TTL, streaming replay): not active yet.

`CacheMiddleware` is registered under `cache` and passes every request
through unchanged, so configs that name it load today. It takes no options yet.
"""

from __future__ import annotations

from lynkr.middleware.passthrough import PassThroughMiddleware

__all__ = ["CacheMiddleware"]


class CacheMiddleware(PassThroughMiddleware):
    """Passes every request through (not active yet)."""
