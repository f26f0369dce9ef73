"""`build_app(config)`: the one place that turns config into constructor arguments.

Builds, without any I/O, the provider adapters, the agent app, and for each
route its middlewares (first listed = outermost), then a small router and
lifespan owner around them. Constructing everything at load means a bad
option is a config error that names its line, found by `lynkr validate`
before any server starts (DESIGN.md §5).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lynkr.agent.app import AgentApp, ModelInfo
from lynkr.agent.loop import LoopLimits, Mode, ToolLoop
from lynkr.agent.sessions import SessionStore
from lynkr.asgi import ASGIApp, Receive, Scope, Send, api_path, get_context
from lynkr.config import Config, ProviderConfig, RouteConfig, located_issue
from lynkr.config.policy import load_policy_data
from lynkr.errors import ConfigError, ConfigIssue
from lynkr.middleware import load_middleware
from lynkr.providers.base import Provider
from lynkr.providers.errors import provider_secrets
from lynkr.providers.pool import ProviderPool, Strategy

# What only some configs or commands use is imported where it is used, so that
# `lynkr validate` loads no more than the config needs (issue #7): the server-side
# tools (dulwich) and the policy engine behind them, each provider adapter and its
# HTTP client, the access log (`serve` only).
if TYPE_CHECKING:
    from lynkr.providers.http import Timeouts

__all__ = ["LynkrApp", "build_app", "build_provider", "routing_options", "served_app"]

# Top-level sections that give a middleware its defaults (inline options win).
_SECTION_DEFAULTS = {"routing": "routing"}


@dataclass(frozen=True, slots=True)
class _Route:
    path: str
    app: ASGIApp
    names: tuple[str, ...]

    def matches(self, path: str) -> bool:
        return path_matches(self.path, path)


def path_matches(route_path: str, path: str) -> bool:
    """A route serves its path and every path below it."""
    return path == route_path or path.startswith(route_path.rstrip("/") + "/")


class LynkrApp:
    """The served ASGI app: routes requests and owns the lifespan of providers."""

    def __init__(
        self,
        *,
        routes: list[_Route],
        fallback: ASGIApp,
        providers: Mapping[str, Provider],
        openers: Sequence[Callable[[], Awaitable[None]]] = (),
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.routes = routes
        self.fallback = fallback
        self.providers = providers
        # Stores (sessions, cache files…), opened when the server starts, closed when it stops.
        self.openers = list(openers)
        self.closers = list(closers)
        self.ready = False
        self._exit_stack: contextlib.AsyncExitStack | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        get_context(scope)  # the request's clock starts here, before any layer runs
        path = api_path(scope.get("path", "/"))
        for route in self.routes:
            if route.matches(path):
                await route.app(scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    async def startup(self) -> None:
        stack = contextlib.AsyncExitStack()
        try:
            for open_ in self.openers:
                await open_()
            for close in self.closers:
                stack.push_async_callback(close)
            for provider in self.providers.values():
                await provider.open()
                stack.push_async_callback(provider.aclose)
        except BaseException:
            await stack.aclose()  # whatever did open is closed again
            raise
        self._exit_stack = stack
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        if self._exit_stack is not None:
            await self._exit_stack.aclose()
            self._exit_stack = None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_app(config: Config) -> LynkrApp:
    """The whole served app for `config`; raises `ConfigError` for options a class refuses."""
    issues: list[ConfigIssue] = []
    providers: dict[str, Provider] = {}
    for name, provider_config in config.providers.items():
        try:
            providers[name] = build_provider(provider_config)
        except ValueError as exc:
            issues.append(located_issue(config, ("providers", name), str(exc)))
    if issues:
        raise ConfigError(issues)
    holder: dict[str, LynkrApp] = {}
    sessions = _session_store(config)
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
    agent = AgentApp(
        pools=pools,
        default_pool=config.routing.get("default_pool"),
        models=[ModelInfo(m.id, m.display_name) for m in config.models],
        context_windows={
            name: p.options["context_window"]
            for name, p in config.providers.items()
            if p.options.get("context_window")
        },
        ping_interval=config.server.ping_interval,
        sessions=sessions,
        loop=build_loop(config),
        is_ready=lambda: holder["app"].ready,
    )
    routes = []
    closers: list[Any] = []
    for index, route in enumerate(config.routes):
        try:
            routes.append(_Route(route.path, _wrap(agent, route, config, closers), _names(route)))
        except _MiddlewareRefused as refused:
            issues.append(located_issue(config, ("routes", index, *refused.path), refused.text))
    if issues:
        raise ConfigError(issues)
    if sessions is not None:
        closers.append(sessions.close)
    app = LynkrApp(
        routes=routes,
        fallback=_guarded_fallback(agent, config),
        providers=providers,
        openers=[sessions.open] if sessions is not None else [],
        closers=closers,
    )
    holder["app"] = app
    return app


def _guarded_fallback(agent: ASGIApp, config: Config) -> ASGIApp:
    """The app for paths no route names (models, sessions, probes), behind the same keys.

    A gateway whose routes require a key must not serve /v1/models or the
    sessions API without one; the probes stay open (see AuthMiddleware).
    """
    for route in config.routes:
        for spec in route.middleware:
            if spec.use == "auth":
                options = middleware_options(spec.use, spec.options, config)
                return cast(ASGIApp, load_middleware("auth")(agent, **options))
    return agent


def build_loop(config: Config) -> ToolLoop | None:
    """The tool loop of `tools.execution: server|hybrid`; None in client mode (the default)."""
    options = dict(config.tools)
    mode = options.get("execution", "client")
    if mode in ("client", "passthrough"):
        return None
    from lynkr.agent.tools import ToolContext, build_registry, scrubbed_environment
    from lynkr.policy import Policy

    base = Path(config.file).resolve().parent
    secrets = [
        secret
        for p in config.providers.values()
        for secret in provider_secrets(p.api_key.reveal() if p.api_key else None, p.headers)
    ]
    try:
        registry = build_registry(options, secrets=secrets)
    except ValueError as exc:
        raise ConfigError([located_issue(config, ("tools",), str(exc))]) from exc
    policy_file = options.get("policy")
    policy = Policy.from_data(load_policy_data(base / policy_file) if policy_file else {})
    workspace = options.get("workspace", {})
    root = (base / workspace.get("root", ".")).resolve()
    data_dir = config.server.data_dir
    env = scrubbed_environment(os.environ, secrets, home=str(data_dir / "tool-home"))

    def context_for(session_id: str | None, calls: int) -> ToolContext:
        # Tools get a home of their own: ~/.ssh, ~/.aws and credentials are not there.
        Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
        return ToolContext(
            workspace=root,
            data_dir=data_dir,
            policy=policy,
            env=env,
            session_id=session_id,
            turn_tool_calls=calls - 1,
            allow_outside=bool(workspace.get("allow_outside", False)),
        )

    limits = options.get("limits", {})
    return ToolLoop(
        registry=registry,
        mode=cast(Mode, mode),
        limits=LoopLimits(
            max_steps=limits.get("max_steps", 8),
            max_tool_calls=limits.get("max_tool_calls", 32),
            max_duration_seconds=limits.get("max_duration_seconds", 300),
        ),
        context_for=context_for,
    )


def _session_store(config: Config) -> SessionStore | None:
    options = config.sessions
    if not options.get("enabled", True):
        return None
    return SessionStore(
        config.server.data_dir / "lynkr.sqlite3",
        retention_days=options.get("retention_days", 30),
        max_sessions=options.get("max_sessions", 10000),
        write_delay=options.get("write_delay_ms", 50) / 1000,
    )


def served_app(config: Config, app: LynkrApp) -> ASGIApp:
    """`app` with the server-level layers `lynkr serve` adds (the access log)."""
    if config.server.access_log:
        from lynkr.middleware.accesslog import AccessLogMiddleware

        return AccessLogMiddleware(app)
    return app


class _MiddlewareRefused(Exception):
    def __init__(self, path: tuple[str | int, ...], text: str) -> None:
        super().__init__(text)
        self.path = path
        self.text = text


def _wrap(app: ASGIApp, route: RouteConfig, config: Config, closers: list[Any]) -> ASGIApp:
    for position in reversed(range(len(route.middleware))):
        spec = route.middleware[position]
        options = middleware_options(spec.use, spec.options, config, route.path)
        try:
            app = load_middleware(spec.use)(app, **options)
        except (TypeError, ValueError) as exc:
            raise _MiddlewareRefused(("middleware", position), f"{spec.use}: {exc}") from exc
        if hasattr(app, "aclose"):
            closers.append(app.aclose)  # a store to close when the server stops
    return app


def middleware_options(
    use: str, inline: Mapping[str, Any], config: Config, route_path: str = "/v1/messages"
) -> dict[str, Any]:
    """A middleware's options: section defaults, then inline ones, with paths made absolute.

    Relative file paths in lynkr.yaml mean "next to lynkr.yaml"; state files without a
    path go into the data dir.
    """
    options = dict(config.sections.get(_SECTION_DEFAULTS.get(use, ""), {}))
    options.update(inline)
    base = Path(config.file).resolve().parent
    if use == "cache":
        _cache_key_inputs(options, config, route_path)
    if use == "cache" and options.get("store") == "sqlite":
        path = options.get("path")
        options["path"] = str(base / path if path else config.server.data_dir / "cache.sqlite3")
    if use == "policy" and isinstance(options.get("policy"), str):
        # A policy file is config too: loaded here, its errors point into it.
        options["policy"] = load_policy_data(base / options["policy"])
    return options


def _cache_key_inputs(options: dict[str, Any], config: Config, route_path: str) -> None:
    """Make the cache key see everything routing may decide on, and keep routes apart.

    The cache may run before routing, so the headers routing reads (the pool header, rule
    headers, the session id when sessions are sticky) join `key_headers`; each route gets
    its own `namespace` unless one is given.
    """
    routing = routing_options(config, route_path)
    headers = set(options.get("key_headers", ("anthropic-beta", "x-lynkr-pool")))
    if routing.get("pool_header"):
        headers.add(str(routing["pool_header"]).lower())
    for rule in routing.get("rules") or ():
        headers |= {name.lower() for name in rule.get("headers", {})}
    if routing.get("sticky_sessions"):
        headers.add("x-claude-code-session-id")
    options["key_headers"] = sorted(headers)
    options.setdefault("namespace", route_path)


def routing_options(config: Config, path: str = "/v1/messages") -> dict[str, Any]:
    """The routing options in force for `path`: the `routing:` section, then inline options."""
    options = dict(config.sections.get("routing", {}))
    for route in config.routes:
        if path_matches(route.path, path):
            for spec in route.middleware:
                if spec.use == "routing":
                    options.update(spec.options)
            break
    return options


def _names(route: RouteConfig) -> tuple[str, ...]:
    return tuple(spec.use for spec in route.middleware)


def build_provider(config: ProviderConfig) -> Provider:
    """The adapter for one provider's config: the type picks the wire dialect."""
    options: Mapping[str, Any] = config.options
    common: dict[str, Any] = {
        "name": config.name,
        "base_url": config.base_url,
        "api_key": config.api_key.reveal() if config.api_key else None,
        "model": config.model,
        "timeouts": _timeouts(config.timeout),
        "headers": config.headers,
    }
    limits = {key: options[key] for key in _LIMITS if key in options}
    # Adapters are imported when a config uses them, so a gateway loads only its dialects.
    if config.type == "ollama":
        from lynkr.providers.ollama import OllamaProvider

        extra = {k: options[k] for k in ("num_ctx", "think", "keep_alive") if k in options}
        return OllamaProvider(**common, **limits, **extra)
    if config.type in _OPENAI_TYPES or options.get("format") == "openai":
        from lynkr.providers.openai import Flavour as OpenAIFlavour
        from lynkr.providers.openai import OpenAIProvider

        return OpenAIProvider(
            **common,
            flavour=cast(OpenAIFlavour, config.type),
            api_version=options.get("api_version"),
            **limits,
        )
    from lynkr.providers.anthropic import AnthropicProvider
    from lynkr.providers.anthropic import Flavour as AnthropicFlavour

    betas = options.get("betas", {})
    return AnthropicProvider(
        **common,
        flavour=cast(AnthropicFlavour, config.type),
        betas_allow=betas.get("allow"),
        betas_drop=betas.get("drop", ()),
        anthropic_version=options.get("anthropic_version", "2023-06-01"),
        count_tokens=options.get("count_tokens", "upstream"),
        strip_billing_header=options.get("strip_billing_header", True),
        mid_conversation_system=options.get("mid_conversation_system", "auto"),
        auth_header=options.get("auth_header"),
    )


_OPENAI_TYPES = frozenset({"openai", "openrouter", "azure-openai", "llamacpp"})
# Per-model limits every translating adapter takes (context_window is the agent's).
_LIMITS = (
    "max_output_tokens",
    "reasoning",
    "supports_images",
    "supports_tools",
    "tool_text_repair",
)


def _timeouts(timeout: Mapping[str, float | None]) -> Timeouts:
    from lynkr.providers.http import Timeouts

    return Timeouts(
        connect=float(timeout.get("connect") or 10.0),
        read=float(timeout.get("read") or 600.0),
        total=timeout.get("total"),
    )
