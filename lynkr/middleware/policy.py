"""Policy enforcement (rules from policies/*.yaml): not active yet.

`PolicyMiddleware` is registered under `policy` and passes every request
through unchanged, so configs that name it load today. It takes no options yet.
"""

from __future__ import annotations

from lynkr.middleware.passthrough import PassThroughMiddleware

__all__ = ["PolicyMiddleware"]


class PolicyMiddleware(PassThroughMiddleware):
    """Passes every request through (not active yet)."""
