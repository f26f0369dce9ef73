"""A middleware's constructor options, from its route entry and the rest of the config.

Most middlewares take their entry's options as they are. A few need the rest
of the config too, each by one function in `_RESOLVERS` (the only place such
knowledge lives):

* `routing` — the top-level `routing:` section gives the defaults, the entry
  overrides them;
* `cache` — relative paths mean "next to lynkr.yaml", a SQLite file without a
  path goes into the data dir; the key sees every header routing may decide
  on (the cache answers before routing runs, for the pool routing would
  choose) and each route gets its own key namespace;
* `policy` — a policy file name is loaded here (a policy file is config too:
  its errors point into it);
* `guard` — the front door's options come from `server:` (`allowed_hosts`
  plus the bind address, `allowed_origins`, `limits.body_timeout_seconds`);
  a route's own entry overrides them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lynkr.config import Config
from lynkr.config.policy import load_policy_data
from lynkr.middleware.routing_rules import TABLE_OPTIONS, routing_table

__all__ = ["config_dir", "middleware_options", "routing_options"]

_DEFAULT_ROUTE = "/v1/messages"
Resolver = Callable[[dict[str, Any], Config, str], None]


def middleware_options(
    use: str, inline: Mapping[str, Any], config: Config, route_path: str = _DEFAULT_ROUTE
) -> dict[str, Any]:
    """The keyword options for middleware `use` on the route at `route_path`."""
    options = dict(inline)
    resolve = _RESOLVERS.get(use)
    if resolve is not None:
        resolve(options, config, route_path)
    return options


def routing_options(config: Config, path: str = _DEFAULT_ROUTE) -> dict[str, Any]:
    """The routing options in force for `path`: the `routing:` section, then inline options."""
    options = config.routing.options()
    for route in config.routes:
        if route.path == path or path.startswith(route.path.rstrip("/") + "/"):
            for spec in route.middleware:
                if spec.use == "routing":
                    options.update(spec.options)
            break
    return options


def config_dir(config: Config) -> Path:
    """The directory relative paths in lynkr.yaml start from: the file's own."""
    return Path(config.file).resolve().parent


def _routing(options: dict[str, Any], config: Config, route_path: str) -> None:
    inline = dict(options)
    options.clear()
    options.update(config.routing.options(), **inline)


def _cache(options: dict[str, Any], config: Config, route_path: str) -> None:
    routing = routing_options(config, route_path)
    table = routing_table(**{name: routing[name] for name in TABLE_OPTIONS if name in routing})
    headers = set(options.get("key_headers", ("anthropic-beta", "x-lynkr-pool")))
    options["key_headers"] = sorted(headers | table.headers_read())
    options.setdefault("namespace", route_path)
    if options.get("store") == "sqlite":
        path = options.get("path")
        store = config_dir(config) / path if path else config.server.data_dir / "cache.sqlite3"
        options["path"] = str(store)


def _policy(options: dict[str, Any], config: Config, route_path: str) -> None:
    if isinstance(options.get("policy"), str):
        options["policy"] = load_policy_data(config_dir(config) / options["policy"])


def _guard(options: dict[str, Any], config: Config, route_path: str) -> None:
    inline = dict(options)
    options.clear()
    server = config.server
    options["allowed_hosts"] = [*server.allowed_hosts, server.host]
    options["allowed_origins"] = list(server.allowed_origins)
    options["body_timeout_seconds"] = server.limits.body_timeout_seconds
    options.update(inline)


_RESOLVERS: dict[str, Resolver] = {
    "routing": _routing,
    "cache": _cache,
    "policy": _policy,
    "guard": _guard,
}
