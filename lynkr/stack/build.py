"""`build_app(config)`: providers, pools, the agent, each route's middlewares, the router.

Everything is constructed at load, so a bad option is a config error that
names its line, found by `lynkr validate` before any server starts. The only
files read are config (the policy files lynkr.yaml names); nothing is opened,
created or connected: what must be (stores, provider clients, the tools'
home) is handed to `LynkrApp` as `Lifetime`s for its lifespan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from lynkr.agent.app import AgentApp, ModelInfo
from lynkr.asgi import ASGIApp, Receive, Scope, Send, api_path
from lynkr.config import Config, ProviderConfig, RouteConfig, located_issue
from lynkr.errors import ConfigError, ConfigIssue
from lynkr.middleware import load_middleware
from lynkr.providers import build_provider as _adapter
from lynkr.providers.base import Provider, ProviderSettings
from lynkr.providers.pool import ProviderPool, Strategy
from lynkr.stack.app import Lifetime, LynkrApp, Route
from lynkr.stack.memory import build_memory, memory_position
from lynkr.stack.options import middleware_options
from lynkr.stack.tools import build_loop

__all__ = ["ADMITTING", "build_app", "build_provider", "served_app"]

# The layers that admit and parse a request; the sessions layer goes right after them,
# before those that answer it (cache, policy, routing, failover), so a session holds
# what the client received.
ADMITTING = frozenset({"guard", "shedding", "auth", "openai_compat", "validation"})


def build_app(config: Config) -> LynkrApp:
    """The whole served app for `config`; raises `ConfigError` for options a class refuses."""
    providers = _providers(config)
    memory = build_memory(config)
    loop, lifetimes = build_loop(config, memory)
    pools = {
        name: ProviderPool(
            name,
            [providers[member] for member in pool.providers],
            [providers[member] for member in pool.fallback],
            strategy=cast(Strategy, pool.strategy),
            weights=pool.weights,
        )
        for name, pool in config.pools.items()
    }
    holder: dict[str, LynkrApp] = {}
    agent = AgentApp(
        pools=pools,
        default_pool=config.routing.default_pool,
        models=[ModelInfo(m.id, m.display_name) for m in config.models],
        context_windows={
            name: p.options["context_window"]
            for name, p in config.providers.items()
            if p.options.get("context_window")
        },
        ping_interval=config.server.ping_interval,
        loop=loop,
        is_ready=lambda: holder["app"].ready,
    )
    sessions = _session_store(config)
    if sessions is not None:
        lifetimes.append(Lifetime("sessions", sessions.close, sessions.open))
    if memory is not None:
        lifetimes.append(Lifetime("memory", memory.close, memory.start))
    placed = _Placed(sessions, memory)
    routes, issues = [], []
    for index, route in enumerate(config.routes):
        try:
            built = _wrap(agent, route, config, lifetimes, placed)
        except _MiddlewareRefused as refused:
            issues.append(located_issue(config, ("routes", index, *refused.path), refused.text))
            continue
        routes.append(Route(route.path, built, _names(route, placed)))
    if issues:
        raise ConfigError(issues)
    app = LynkrApp(
        routes=routes,
        fallback=_front(_guarded(_fallback(agent, sessions, memory), config), config),
        providers=providers,
        lifetimes=lifetimes,
    )
    holder["app"] = app
    return app


def served_app(config: Config, app: LynkrApp) -> ASGIApp:
    """`app` with the server-level layers `lynkr serve` adds (the access log)."""
    if config.server.access_log:
        from lynkr.middleware.accesslog import AccessLogMiddleware

        return AccessLogMiddleware(app)
    return app


def build_provider(config: ProviderConfig) -> Provider:
    """The adapter for one provider's config (the provider table picks its dialect)."""
    settings = ProviderSettings(
        name=config.name,
        type=config.type,
        base_url=config.base_url,
        api_key=config.api_key.reveal() if config.api_key else None,
        model=config.model,
        timeout=config.timeout,
        headers=config.headers,
        options=config.options,
    )
    return cast(Provider, _adapter(settings))


def _providers(config: Config) -> dict[str, Provider]:
    issues: list[ConfigIssue] = []
    providers: dict[str, Provider] = {}
    for name, provider_config in config.providers.items():
        try:
            providers[name] = build_provider(provider_config)
        except ValueError as exc:
            issues.append(located_issue(config, ("providers", name), str(exc)))
    if issues:
        raise ConfigError(issues)
    return providers


def _session_store(config: Config) -> Any:
    if not config.sessions.enabled:
        return None
    from lynkr.sessions import SQLiteSessionStore

    options = config.sessions
    return SQLiteSessionStore(
        config.server.data_dir / "lynkr.sqlite3",
        retention_days=options.retention_days,
        max_sessions=options.max_sessions,
        write_delay=options.write_delay_ms / 1000,
    )


class _MiddlewareRefused(Exception):
    def __init__(self, path: tuple[str | int, ...], text: str) -> None:
        super().__init__(text)
        self.path = path
        self.text = text


class _Placed:
    """The layers the stack places itself on agent routes: sessions and memory."""

    def __init__(self, sessions: Any, memory: Any) -> None:
        self.sessions = sessions
        self.memory = memory

    def positions(self, route: RouteConfig) -> dict[int, list[str]]:
        """Index in the route's list → the placed layers that go before that entry,
        outermost first."""
        placed: dict[int, list[str]] = {}
        if route.app != "agent":
            return placed
        if self.sessions is not None:
            placed.setdefault(_sessions_position(route.middleware), []).append("sessions")
        if self.memory is not None:
            at = memory_position([spec.use for spec in route.middleware])
            placed.setdefault(at, []).append("memory")
        return placed

    def layers(self, names: list[str], app: ASGIApp, config: Config) -> ASGIApp:
        """`app` inside the placed layers `names` (outermost first)."""
        for name in reversed(names):
            if name == "memory":
                from lynkr.middleware.memory import MemoryMiddleware

                app = MemoryMiddleware(app, service=self.memory)
            else:
                app = _sessions_layer(app, self.sessions, config.sessions.max_answer_bytes)
        return app


def _wrap(
    app: ASGIApp, route: RouteConfig, config: Config, lifetimes: list[Lifetime], placed: _Placed
) -> ASGIApp:
    """`app` inside the route's middlewares (first listed = outermost), sessions and memory
    placed."""
    specs = route.middleware
    positions = placed.positions(route)
    if len(specs) in positions:
        app = placed.layers(positions[len(specs)], app, config)
    for position in reversed(range(len(specs))):
        spec = specs[position]
        options = middleware_options(spec.use, spec.options, config, route.path)
        try:
            app = load_middleware(spec.use)(app, **options)
        except (TypeError, ValueError) as exc:
            raise _MiddlewareRefused(("middleware", position), f"{spec.use}: {exc}") from exc
        if hasattr(app, "aclose"):
            lifetimes.append(Lifetime(f"{spec.use} on {route.path}", app.aclose))
        if position in positions:
            app = placed.layers(positions[position], app, config)
    if not _lists_guard(route):
        app = _front(app, config, route.path)
    return app


def _lists_guard(route: RouteConfig) -> bool:
    return any(spec.use == "guard" for spec in route.middleware)


def _front(app: ASGIApp, config: Config, route_path: str = "/") -> ASGIApp:
    """`app` behind the front door (`guard`), configured from `server:`.

    Placed by the stack, outermost, on every route that does not list it and on
    lynkr's own endpoints: a browser's request is refused before any layer reads
    it (docs/architecture.md, "The front door").
    """
    options = middleware_options("guard", {}, config, route_path)
    return cast(ASGIApp, load_middleware("guard")(app, **options))


def _sessions_position(specs: Sequence[Any]) -> int:
    """Where the sessions layer goes in a route's list: after the admitting layers."""
    position = 0
    while position < len(specs) and specs[position].use in ADMITTING:
        position += 1
    return position


def _sessions_layer(app: ASGIApp, store: Any, max_answer_bytes: int) -> ASGIApp:
    from lynkr.middleware.sessions import SessionsMiddleware

    return SessionsMiddleware(app, store=store, max_answer_bytes=max_answer_bytes)


def _names(route: RouteConfig, placed: _Placed) -> tuple[str, ...]:
    names = [spec.use for spec in route.middleware]
    for position, layers in sorted(placed.positions(route).items(), reverse=True):
        names[position:position] = layers
    if not _lists_guard(route):
        names.insert(0, "guard")
    return tuple(names)


def _fallback(agent: ASGIApp, sessions: Any, memory: Any) -> ASGIApp:
    """The app for paths no route names: lynkr's own endpoints, else the agent."""
    endpoints: dict[str, ASGIApp] = {}
    if sessions is not None:
        from lynkr.sessions import SessionsEndpoint

        endpoints[SessionsEndpoint.PREFIX] = SessionsEndpoint(sessions)
    if memory is not None:
        from lynkr.memory.endpoint import MemoriesEndpoint

        endpoints[MemoriesEndpoint.PREFIX] = MemoriesEndpoint(memory)
    return _Endpoints(agent, endpoints) if endpoints else agent


class _Endpoints:
    """lynkr's own endpoints, mounted by Starlette's router (built on first use, so
    `lynkr validate` loads no Starlette); other paths go to `default`.

    Not the hot path. Paths are matched as API paths (a client's path prefix
    removed, as for every lynkr endpoint).
    """

    def __init__(self, default: ASGIApp, endpoints: dict[str, ASGIApp]) -> None:
        self.default = default
        self.endpoints = endpoints
        self._router: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.default(scope, receive, send)
            return
        await self.router({**scope, "path": api_path(scope["path"])}, receive, send)

    @property
    def router(self) -> ASGIApp:
        if self._router is None:
            from starlette.routing import Route, Router

            paths = [
                route
                for prefix, app in self.endpoints.items()
                for route in (Route(prefix, app), Route(prefix + "/{rest:path}", app))
            ]
            router = Router(routes=paths, default=self.default, redirect_slashes=False)
            self._router = cast(ASGIApp, router)
        return self._router


def _guarded(app: ASGIApp, config: Config) -> ASGIApp:
    """`app` behind the same keys as the routes (the probes stay open, see AuthMiddleware).

    A gateway whose routes require a key must not serve /v1/models or the
    sessions API without one.
    """
    for route in config.routes:
        for spec in route.middleware:
            if spec.use == "auth":
                options = middleware_options(spec.use, spec.options, config)
                return cast(ASGIApp, load_middleware("auth")(app, **options))
    return app
