"""The stack builder: the one place that turns config into constructor arguments.

* `build` — `build_app(config)`: providers, pools, the agent app, each route's
  middlewares (first listed = outermost, the sessions layer placed), the router;
* `options` — a middleware's options from its entry and the rest of the config;
* `tools` — the tool loop of `tools.execution: server|hybrid`;
* `app` — `LynkrApp`, the served ASGI app: routing and the lifespan.

Constructing everything at load means a bad option is a config error that
names its line, found by `lynkr validate` before any server starts.
"""

from lynkr.stack.app import Lifetime, LynkrApp, Route
from lynkr.stack.build import build_app, build_provider, served_app
from lynkr.stack.options import middleware_options, routing_options

__all__ = [
    "Lifetime",
    "LynkrApp",
    "Route",
    "build_app",
    "build_provider",
    "middleware_options",
    "routing_options",
    "served_app",
]
