"""lynkr: run Claude Code and any Anthropic-API client against the provider you choose.

The public surface:

* `load_config(path)` — lynkr.yaml → a validated, typed `Config` (raises
  `ConfigError` listing every problem with its line and column);
* `build_app(config)` — the whole served ASGI app for a config (`LynkrApp`);
  `served_app(config, app)` adds what `lynkr serve` adds (the access log);
* the standalone pure-ASGI middlewares, each `Cls(app, **options)` with the
  options its section of the schema lists: `GuardMiddleware`, `SheddingMiddleware`,
  `AuthMiddleware`, `OpenAICompatMiddleware`, `ValidationMiddleware`,
  `CacheMiddleware`, `PolicyMiddleware`, `RoutingMiddleware`,
  `FailoverMiddleware`, `SessionsMiddleware`, `AccessLogMiddleware`;
* `AgentApp`, the terminal app that speaks the Anthropic Messages API.

Names load on first use, so `import lynkr` stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lynkr.agent.app import AgentApp
    from lynkr.config import Config, ConfigError, load_config
    from lynkr.middleware.accesslog import AccessLogMiddleware
    from lynkr.middleware.auth import AuthMiddleware
    from lynkr.middleware.cache import CacheMiddleware
    from lynkr.middleware.failover import FailoverMiddleware
    from lynkr.middleware.guard import GuardMiddleware
    from lynkr.middleware.openai_compat import OpenAICompatMiddleware
    from lynkr.middleware.policy import PolicyMiddleware
    from lynkr.middleware.routing import RoutingMiddleware
    from lynkr.middleware.sessions import SessionsMiddleware
    from lynkr.middleware.shedding import SheddingMiddleware
    from lynkr.middleware.validation import ValidationMiddleware
    from lynkr.stack import LynkrApp, build_app, served_app

try:
    __version__ = version("lynkr")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# Public name → the module that defines it.
_EXPORTS = {
    "AccessLogMiddleware": "lynkr.middleware.accesslog",
    "AgentApp": "lynkr.agent.app",
    "AuthMiddleware": "lynkr.middleware.auth",
    "CacheMiddleware": "lynkr.middleware.cache",
    "Config": "lynkr.config",
    "ConfigError": "lynkr.config",
    "FailoverMiddleware": "lynkr.middleware.failover",
    "GuardMiddleware": "lynkr.middleware.guard",
    "LynkrApp": "lynkr.stack",
    "OpenAICompatMiddleware": "lynkr.middleware.openai_compat",
    "PolicyMiddleware": "lynkr.middleware.policy",
    "RoutingMiddleware": "lynkr.middleware.routing",
    "SessionsMiddleware": "lynkr.middleware.sessions",
    "SheddingMiddleware": "lynkr.middleware.shedding",
    "ValidationMiddleware": "lynkr.middleware.validation",
    "build_app": "lynkr.stack",
    "load_config": "lynkr.config",
    "served_app": "lynkr.stack",
}

__all__ = [
    "AccessLogMiddleware",
    "AgentApp",
    "AuthMiddleware",
    "CacheMiddleware",
    "Config",
    "ConfigError",
    "FailoverMiddleware",
    "GuardMiddleware",
    "LynkrApp",
    "OpenAICompatMiddleware",
    "PolicyMiddleware",
    "RoutingMiddleware",
    "SessionsMiddleware",
    "SheddingMiddleware",
    "ValidationMiddleware",
    "__version__",
    "build_app",
    "load_config",
    "served_app",
]


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lynkr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
