"""The validated config as frozen dataclasses.

`build_config` runs after schema validation and default filling, so it may
trust shapes and types; it only checks what a JSON Schema cannot say: that
names refer to things that exist, and that a provider type is implemented.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lynkr.errors import ConfigIssue

__all__ = [
    "Config",
    "LimitsConfig",
    "MemoryConfig",
    "MiddlewareSpec",
    "ModelEntry",
    "PoolConfig",
    "ProviderConfig",
    "RouteConfig",
    "RoutingConfig",
    "SandboxConfig",
    "Secret",
    "ServerConfig",
    "ServerLimits",
    "SessionsConfig",
    "ShellConfig",
    "TestProfileConfig",
    "ToolsConfig",
    "WorkspaceConfig",
    "build_config",
]

# Locates a config path for an issue: (path, key?) -> ConfigIssue with that message.
Locator = Callable[[tuple[str | int, ...], str], ConfigIssue]


class Secret:
    """A credential: usable by code that needs it, shown as `***` everywhere else."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str | None = None) -> None:
        self._value = value
        # Where it came from, for summaries: e.g. "$ANTHROPIC_API_KEY".
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """`server.limits`: what a client may hold before lynkr answers it (the ASGI server's
    connection, head size and head-read bounds; the body-read deadline)."""

    max_connections: int = 1024
    max_header_bytes: int = 65536
    header_timeout_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    body_timeout_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str
    port: int
    data_dir: Path
    log_level: str
    access_log: bool
    ping_interval: float
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    limits: ServerLimits = field(default_factory=ServerLimits)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One upstream; `options` holds the type-specific keys as validated."""

    name: str
    type: str
    base_url: str | None
    api_key: Secret | None
    model: str | None
    timeout: Mapping[str, float | None]
    headers: Mapping[str, str]
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PoolConfig:
    name: str
    providers: tuple[str, ...]
    fallback: tuple[str, ...]
    strategy: str = "ordered"
    weights: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MiddlewareSpec:
    """`use` plus the options given inline in the route (defaults already filled)."""

    use: str
    options: Mapping[str, Any]
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class RouteConfig:
    path: str
    middleware: tuple[MiddlewareSpec, ...]
    app: str


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """The top-level `routing:` section: the routing middleware's defaults (`options`)."""

    default_pool: str | None
    tool_thresholds: Mapping[str, int] | None
    pool_header: str | None
    rules: tuple[Mapping[str, Any], ...] | None
    sticky_sessions: bool
    sticky_ttl_seconds: float
    sticky_max_sessions: int

    def options(self) -> dict[str, Any]:
        """The section as the routing middleware's keyword options."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """The `sessions:` section."""

    enabled: bool
    retention_days: float
    max_sessions: int
    write_delay_ms: float
    max_answer_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """The `memory:` section (every default filled from the schema; docs/memory.md)."""

    enabled: bool = False
    retrieval_limit: int = 5
    surprise_threshold: float = 0.3
    scope: str = "workspace"
    # type, base_url, model, api_key (a Secret), dimensions, timeout_seconds
    embeddings: Mapping[str, Any] = field(default_factory=lambda: {"type": "local"})
    half_life_days: float = 30.0
    max_age_days: float = 90.0
    max_count: int = 10_000
    max_content_chars: int = 500
    extraction: bool = True
    injection: bool = True
    prune_interval_minutes: float = 60.0
    surprise_weights: Mapping[str, float] = field(default_factory=dict)
    ranking: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkspaceConfig:
    root: str
    allow_outside: bool


@dataclass(frozen=True, slots=True)
class ShellConfig:
    timeout_seconds: float
    max_output_bytes: int
    sandbox: str


@dataclass(frozen=True, slots=True)
class TestProfileConfig:
    __test__ = False  # not a pytest class

    command: str
    cwd: str
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_steps: int
    max_tool_calls: int
    max_duration_seconds: float


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """`tools.sandbox`: where tool processes run (`lynkr.sandbox`)."""

    type: str = "auto"
    network: bool = False


@dataclass(frozen=True, slots=True)
class ToolsConfig:
    """The `tools:` section: whether and which server-side tools lynkr runs."""

    execution: str
    policy: str | None
    workspace: WorkspaceConfig
    sandbox: SandboxConfig
    enabled: tuple[str, ...]
    shell: ShellConfig
    test_profiles: Mapping[str, TestProfileConfig]
    git_author: str | None
    limits: LimitsConfig

    @property
    def runs_tools(self) -> bool:
        """False in `client` mode (alias `passthrough`): lynkr runs no tool at all."""
        return self.execution not in ("client", "passthrough")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    display_name: str | None


@dataclass(frozen=True, slots=True)
class Config:
    file: str
    server: ServerConfig
    providers: Mapping[str, ProviderConfig]
    pools: Mapping[str, PoolConfig]
    routing: RoutingConfig
    models: tuple[ModelEntry, ...]
    routes: tuple[RouteConfig, ...]
    sessions: SessionsConfig
    tools: ToolsConfig
    memory: MemoryConfig = field(default_factory=MemoryConfig)


_COMMON_PROVIDER_KEYS = ("type", "base_url", "api_key", "model", "timeout", "headers")


def build_config(
    data: Mapping[str, Any],
    *,
    file: str,
    env_paths: frozenset[tuple[str | int, ...]],
    locate: Locator,
) -> tuple[Config, list[ConfigIssue]]:
    """Turn validated, default-filled data into a `Config`, plus cross-reference issues."""
    issues: list[ConfigIssue] = []
    base = Path(file).resolve().parent
    server = data["server"]
    data_dir = Path(server["data_dir"])
    providers = {
        name: _provider(name, raw, env_paths, locate, issues)
        for name, raw in data["providers"].items()
    }
    pools = {
        name: _pool(name, raw, providers, locate, issues) for name, raw in data["pools"].items()
    }
    routing = data["routing"]
    _check_routing(routing, pools, locate, issues)
    config = Config(
        file=file,
        server=ServerConfig(
            host=server["host"],
            port=server["port"],
            data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
            log_level=server["log_level"],
            access_log=server["access_log"],
            ping_interval=float(server["ping_interval"]),
            allowed_hosts=tuple(server["allowed_hosts"]),
            allowed_origins=tuple(server["allowed_origins"]),
            limits=ServerLimits(**server["limits"]),
        ),
        providers=providers,
        pools=pools,
        routing=_routing(routing),
        models=tuple(ModelEntry(m["id"], m.get("display_name")) for m in data["models"]),
        routes=tuple(_route(i, raw) for i, raw in enumerate(data["routes"])),
        sessions=SessionsConfig(**data["sessions"]),
        tools=_tools(data["tools"]),
        memory=_memory(data["memory"], env_paths),
    )
    return config, issues


def _routing(raw: Mapping[str, Any]) -> RoutingConfig:
    rules = raw["rules"]
    return RoutingConfig(
        default_pool=raw["default_pool"],
        tool_thresholds=raw["tool_thresholds"],
        pool_header=raw["pool_header"],
        rules=None if rules is None else tuple(rules),
        sticky_sessions=raw["sticky_sessions"],
        sticky_ttl_seconds=raw["sticky_ttl_seconds"],
        sticky_max_sessions=raw["sticky_max_sessions"],
    )


def _memory(raw: Mapping[str, Any], env_paths: frozenset[tuple[str | int, ...]]) -> MemoryConfig:
    """The validated `memory:` section; its embeddings key becomes a `Secret`."""
    embeddings = dict(raw["embeddings"])
    if "api_key" in embeddings:
        from_env = ("memory", "embeddings", "api_key") in env_paths
        source = "environment" if from_env else "lynkr.yaml"
        embeddings["api_key"] = Secret(embeddings["api_key"], source)
    return MemoryConfig(
        enabled=raw["enabled"],
        retrieval_limit=raw["retrieval_limit"],
        surprise_threshold=raw["surprise_threshold"],
        scope=raw["scope"],
        embeddings=embeddings,
        half_life_days=raw["decay"]["half_life_days"],
        max_age_days=raw["max_age_days"],
        max_count=raw["max_count"],
        max_content_chars=raw["max_content_chars"],
        extraction=raw["extraction"]["enabled"],
        injection=raw["injection"]["enabled"],
        prune_interval_minutes=raw["prune_interval_minutes"],
        surprise_weights=dict(raw["surprise_weights"]),
        ranking=dict(raw["ranking"]),
    )


def _tools(raw: Mapping[str, Any]) -> ToolsConfig:
    """The validated `tools:` section; every default was filled from the schema."""
    return ToolsConfig(
        execution=raw["execution"],
        policy=raw["policy"],
        workspace=WorkspaceConfig(**raw["workspace"]),
        sandbox=SandboxConfig(**raw["sandbox"]),
        enabled=tuple(raw["enabled"]),
        shell=ShellConfig(**raw["shell"]),
        test_profiles={
            name: TestProfileConfig(**profile) for name, profile in raw["tests"]["profiles"].items()
        },
        git_author=raw["git"]["author"],
        limits=LimitsConfig(**raw["limits"]),
    )


def _provider(
    name: str,
    raw: Mapping[str, Any],
    env_paths: frozenset[tuple[str | int, ...]],
    locate: Locator,
    issues: list[ConfigIssue],
) -> ProviderConfig:
    kind = raw["type"]
    if kind == "databricks" and not (raw.get("endpoint") or raw.get("model")):
        issues.append(
            locate(
                ("providers", name),
                "missing required key 'endpoint' (the serving endpoint name, "
                "e.g. databricks-claude-sonnet-4-5)",
            )
        )
    if kind == "anthropic" and not raw.get("base_url") and not raw.get("api_key"):
        issues.append(
            locate(
                ("providers", name),
                "missing required key 'api_key' (api.anthropic.com needs one; "
                "write api_key: ${ANTHROPIC_API_KEY})",
            )
        )
    key = raw.get("api_key")
    key_path = ("providers", name, "api_key")
    secret = None
    if key is not None:
        secret = Secret(key, source="environment" if key_path in env_paths else "lynkr.yaml")
    return ProviderConfig(
        name=name,
        type=kind,
        base_url=raw.get("base_url"),
        api_key=secret,
        model=raw.get("model") or raw.get("endpoint") or raw.get("deployment"),
        timeout=dict(raw.get("timeout", {})),
        headers=dict(raw.get("headers", {})),
        options={k: v for k, v in raw.items() if k not in _COMMON_PROVIDER_KEYS},
    )


def _pool(
    name: str,
    raw: Mapping[str, Any],
    providers: Mapping[str, ProviderConfig],
    locate: Locator,
    issues: list[ConfigIssue],
) -> PoolConfig:
    for key in ("providers", "fallback"):
        for index, member in enumerate(raw.get(key, [])):
            if member not in providers:
                issues.append(
                    locate(
                        ("pools", name, key, index),
                        f"unknown provider '{member}'; defined providers: "
                        + ", ".join(sorted(providers)),
                    )
                )
    for member in raw.get("weights", {}):
        if member not in raw["providers"]:
            issues.append(
                locate(
                    ("pools", name, "weights", member),
                    f"'{member}' is not one of this pool's providers: "
                    + ", ".join(raw["providers"]),
                )
            )
    return PoolConfig(
        name,
        tuple(raw["providers"]),
        tuple(raw.get("fallback", [])),
        strategy=raw.get("strategy", "ordered"),
        weights=dict(raw.get("weights", {})),
    )


def _check_routing(
    routing: Mapping[str, Any],
    pools: Mapping[str, PoolConfig],
    locate: Locator,
    issues: list[ConfigIssue],
) -> None:
    known = ", ".join(sorted(pools))
    default = routing.get("default_pool")
    if default is not None and default not in pools:
        issues.append(
            locate(("routing", "default_pool"), f"unknown pool '{default}'; defined pools: {known}")
        )
    if default is None and len(pools) > 1:
        issues.append(
            locate(
                ("routing",),
                f"missing required key 'default_pool' (several pools are defined: {known})",
            )
        )
    for index, rule in enumerate(routing.get("rules") or []):
        if rule["pool"] not in pools:
            issues.append(
                locate(
                    ("routing", "rules", index, "pool"),
                    f"unknown pool '{rule['pool']}'; defined pools: {known}",
                )
            )
    thresholds = routing.get("tool_thresholds")
    if thresholds:
        missing = [name for name in ("simple", "moderate", "complex") if name not in pools]
        if missing:
            issues.append(
                locate(
                    ("routing", "tool_thresholds"),
                    "tool_thresholds route to pools 'simple', 'moderate' and 'complex'; "
                    "not defined: " + ", ".join(f"'{m}'" for m in missing),
                )
            )
        if thresholds["moderate"] < thresholds["simple"]:
            issues.append(
                locate(
                    ("routing", "tool_thresholds", "moderate"),
                    f"must be at least simple ({thresholds['simple']}), "
                    f"got {thresholds['moderate']}",
                )
            )


def _route(index: int, raw: Mapping[str, Any]) -> RouteConfig:
    specs = tuple(
        MiddlewareSpec(
            use=entry["use"],
            options={k: v for k, v in entry.items() if k != "use"},
            path=("routes", index, "middleware", position),
        )
        for position, entry in enumerate(raw.get("middleware", []))
    )
    return RouteConfig(path=raw["path"], middleware=specs, app=raw["app"])
