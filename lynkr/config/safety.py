"""Configs that load and serve but expose the gateway: warnings, errors under `--strict`.

Pure over a loaded `Config` (the file is read again only to locate a warning):

* **an unauthenticated route on a non-loopback bind** — anyone who can reach
  the address spends the provider keys behind it;
* **`auth` on only some routes** — the others are open doors next to a locked one;
* **a layer that answers before `auth`** (`cache`, `routing`, `failover`,
  `policy`) — a cache before auth serves stored answers to anyone, and the
  others do work for callers auth would have refused;
* **`allowed_origins: ['*']` without auth everywhere** — every web page the
  user opens can use the gateway.
"""

from __future__ import annotations

import ipaddress

from lynkr.config.model import Config, RouteConfig
from lynkr.errors import ConfigIssue

__all__ = ["is_loopback", "safety_warnings"]

# Layers that must come after `auth` when both are in a route.
_AFTER_AUTH = ("cache", "policy", "routing", "failover")


def safety_warnings(config: Config) -> list[ConfigIssue]:
    """Every unsafe choice `config` makes, as located warnings."""
    from lynkr.config import located_issue

    found: list[tuple[tuple[str | int, ...], str]] = []
    guarded = [_has_auth(route) for route in config.routes]
    exposed = not is_loopback(config.server.host)
    for index, route in enumerate(config.routes):
        where: tuple[str | int, ...] = ("routes", index, "middleware")
        if not guarded[index] and exposed:
            found.append((where, _open_route(route, config.server.host)))
        elif not guarded[index] and any(guarded):
            found.append((where, _partly_guarded(route)))
        found += [((*where, at), message) for at, message in _before_auth(route)]
    if "*" in config.server.allowed_origins and not all(guarded):
        found.append((("server", "allowed_origins"), _any_origin()))
    located = [_as_warning(located_issue(config, path, message)) for path, message in found]
    return sorted(located, key=lambda issue: (issue.line, issue.column))


def is_loopback(host: str) -> bool:
    """Whether `host` (a bind address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name, or 0.0.0.0-like wildcard spelled otherwise: assume exposed


def _has_auth(route: RouteConfig) -> bool:
    return any(spec.use == "auth" for spec in route.middleware)


def _before_auth(route: RouteConfig) -> list[tuple[int, str]]:
    names = [spec.use for spec in route.middleware]
    if "auth" not in names:
        return []
    auth_at = names.index("auth")
    return [
        (at, f"`{name}` runs before `auth` on {route.path}: " + _WHY_BEFORE[name])
        for at, name in enumerate(names[:auth_at])
        if name in _AFTER_AUTH
    ]


_WHY_BEFORE = {
    "cache": "a caller without a key gets the answers cached for callers with one, "
    "and cache entries are not scoped per key. Move `auth` above it.",
    "policy": "requests auth will refuse are judged first. Move `auth` above it.",
    "routing": "requests auth will refuse are routed first. Move `auth` above it.",
    "failover": "requests auth will refuse are counted by the breakers. Move `auth` above it.",
}


def _open_route(route: RouteConfig, host: str) -> str:
    return (
        f"{route.path} has no `auth` and lynkr binds {host}, which other machines can "
        "reach: anyone there uses your provider keys. Add {use: auth, keys: "
        "['${LYNKR_CLIENT_KEY}']} first in its middleware, or bind 127.0.0.1."
    )


def _partly_guarded(route: RouteConfig) -> str:
    return (
        f"{route.path} has no `auth` while other routes do: callers refused there are "
        "served here. Add the same `auth` entry to this route."
    )


def _any_origin() -> str:
    return (
        "allowed_origins ['*'] lets every web page the user opens call lynkr, and some "
        "routes have no `auth`. Name the origins you trust, or add `auth` to every route."
    )


def _as_warning(issue: ConfigIssue) -> ConfigIssue:
    return ConfigIssue(
        issue.file, issue.line, issue.column, issue.path, issue.message, severity="warning"
    )
