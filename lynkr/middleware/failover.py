"""Circuit breaking, retries and fallback between providers: not active yet.

`FailoverMiddleware` is registered under `failover` and passes every request
through unchanged, so configs that name it load today. It takes no options yet.
"""

from __future__ import annotations

from lynkr.middleware.passthrough import PassThroughMiddleware

__all__ = ["FailoverMiddleware"]


class FailoverMiddleware(PassThroughMiddleware):
    """Passes every request through (not active yet)."""
