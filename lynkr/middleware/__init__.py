"""Standalone pure-ASGI middlewares, and the table that maps their YAML names to classes.

Each class is `Cls(app, **options)` and can be mounted in any ASGI app
without the rest of lynkr. The table holds import strings, resolved only when
a config uses the name (the uvicorn way), so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MIDDLEWARE", "load_middleware"]

MIDDLEWARE: dict[str, str] = {
    "guard": "lynkr.middleware.guard:GuardMiddleware",
    "shedding": "lynkr.middleware.shedding:SheddingMiddleware",
    "auth": "lynkr.middleware.auth:AuthMiddleware",
    "openai_compat": "lynkr.middleware.openai_compat:OpenAICompatMiddleware",
    "validation": "lynkr.middleware.validation:ValidationMiddleware",
    "cache": "lynkr.middleware.cache:CacheMiddleware",
    "policy": "lynkr.middleware.policy:PolicyMiddleware",
    "routing": "lynkr.middleware.routing:RoutingMiddleware",
    "failover": "lynkr.middleware.failover:FailoverMiddleware",
}


def load_middleware(name: str) -> Any:
    """The middleware class registered under `name`."""
    try:
        target = MIDDLEWARE[name]
    except KeyError:
        known = ", ".join(sorted(MIDDLEWARE))
        raise ValueError(f"unknown middleware '{name}'; known: {known}") from None
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
