"""Load shedding (in-flight and queue limits with 529 + retry-after): not active yet.

`SheddingMiddleware` is registered under `shedding` and passes every request
through unchanged, so configs that name it load today. It takes no options yet.
"""

from __future__ import annotations

from lynkr.middleware.passthrough import PassThroughMiddleware

__all__ = ["SheddingMiddleware"]


class SheddingMiddleware(PassThroughMiddleware):
    """Passes every request through (not active yet)."""
