"""The stack builder: options from config, paths resolved, stores closed with the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lynkr.config import load_config
from lynkr.stack import build_app, middleware_options

CONFIG = """\
version: 1
server: {data_dir: state}
providers:
  up: {type: anthropic, base_url: "http://127.0.0.1:9", model: m}
pools: {main: {providers: [up]}}
routes:
  - path: /v1/messages
    middleware: [{use: validation}, {use: cache, store: sqlite}, {use: routing}]
    app: agent
"""


@pytest.mark.anyio
async def test_sqlite_cache_goes_into_the_data_dir_and_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "lynkr.yaml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    config = load_config(path)
    spec = config.routes[0].middleware[1]
    options = middleware_options(spec.use, spec.options, config)
    assert options["path"] == str(tmp_path / "conf" / "state" / "cache.sqlite3")
    app = build_app(config)
    # The cache's SQLite file, the sessions database and the provider's client, in order.
    assert [lifetime.name for lifetime in app.lifetimes] == [
        "sessions",
        "cache on /v1/messages",
        "provider up",
    ]

    await app.startup()
    await app.shutdown()


def test_relative_paths_are_next_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "lynkr.yaml"
    path.write_text(
        CONFIG.replace("{use: cache, store: sqlite}", "{use: cache, store: sqlite, path: c.db}")
    )
    config = load_config(path)
    spec: Any = config.routes[0].middleware[1]
    assert middleware_options(spec.use, spec.options, config)["path"] == str(tmp_path / "c.db")


def test_paths_outside_the_routes_need_the_same_key(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    path = tmp_path / "lynkr.yaml"
    path.write_text(
        CONFIG.replace("[{use: validation}", "[{use: auth, keys: [k1]}, {use: validation}")
    )
    # TestClient's own Host, "testserver", is a name the front door refuses.
    with TestClient(build_app(load_config(path)), base_url="http://localhost") as client:
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers={"x-api-key": "k1"}).status_code == 200
        assert client.get("/v1/lynkr/sessions", headers={"x-api-key": "k1"}).status_code != 401
        assert client.head("/").status_code == 200


def test_the_cache_key_sees_what_routing_reads(tmp_path: Path) -> None:
    path = tmp_path / "lynkr.yaml"
    path.write_text(
        CONFIG.replace(
            "{use: routing}", "{use: routing, rules: [{pool: main, headers: {X-Tenant: gold}}]}"
        )
    )
    config = load_config(path)
    spec = config.routes[0].middleware[1]
    options = middleware_options(spec.use, spec.options, config, "/v1/messages")
    assert {"x-tenant", "x-lynkr-pool", "anthropic-beta"} <= set(options["key_headers"])
    assert options["namespace"] == "/v1/messages"


def test_the_sessions_layer_sits_after_the_admitting_layers(tmp_path: Path) -> None:
    """What a session records is what the client got from the layers that answer."""
    default = build_app(load_config(Path(__file__).parents[2] / "lynkr.yaml"))
    names = {route.path: route.names for route in default.routes}
    assert names["/v1/messages"] == (
        "guard",
        "shedding",
        "validation",
        "sessions",
        "cache",
        "policy",
        "routing",
        "failover",
    )
    assert names["/v1/chat/completions"] == (
        "guard",
        "shedding",
        "openai_compat",
        "validation",
        "sessions",
        "routing",
        "failover",
    )
    path = tmp_path / "lynkr.yaml"
    path.write_text(CONFIG + "sessions: {enabled: false}\n")
    assert build_app(load_config(path)).routes[0].names == (
        "guard",
        "validation",
        "cache",
        "routing",
    )


@pytest.mark.anyio
async def test_a_failed_start_closes_what_had_opened(tmp_path: Path) -> None:
    from lynkr.stack import Lifetime, LynkrApp

    events: list[str] = []

    def lifetime(name: str, *, fails: bool = False) -> Lifetime:
        async def open_() -> None:
            if fails:
                raise OSError(f"{name} cannot open")
            events.append(f"open {name}")

        async def close() -> None:
            events.append(f"close {name}")

        return Lifetime(name, close, open_)

    async def agent(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not served")

    app = LynkrApp(
        routes=[],
        fallback=agent,
        providers={},
        lifetimes=[lifetime("a"), lifetime("b"), lifetime("c", fails=True), lifetime("d")],
    )

    try:
        await app.startup()
    except OSError:
        events.append("failed")
    assert events == ["open a", "open b", "close b", "close a", "failed"]
    assert not app.ready


def test_lynkr_s_own_files_are_protected_from_tools(tmp_path: Path) -> None:
    from lynkr.stack.tools import protected_paths

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "default.yaml").write_text("{}\n")
    path = tmp_path / "lynkr.yaml"
    path.write_text(CONFIG + "tools: {execution: server, policy: policies/default.yaml}\n")
    assert protected_paths(load_config(path)) == (
        path.resolve(),
        (tmp_path / "state").resolve(),
        (tmp_path / "policies").resolve(),
    )


@pytest.mark.anyio
async def test_a_serving_app_freezes_what_startup_built(tmp_path: Path) -> None:
    import gc

    path = tmp_path / "lynkr.yaml"
    path.write_text(CONFIG)
    plain, served = build_app(load_config(path)), build_app(load_config(path))
    await plain.startup()
    assert gc.get_freeze_count() == 0  # an embedding app's objects stay collectable
    await plain.shutdown()
    served.freeze_after_startup = True  # what `lynkr serve` sets
    await served.startup()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        await served.shutdown()


@pytest.mark.anyio
async def test_memory_places_its_layer_and_its_lifetime(tmp_path: Path) -> None:
    path = tmp_path / "lynkr.yaml"
    path.write_text(CONFIG + "memory: {enabled: true, embeddings: {type: none}}\n")
    app = build_app(load_config(path))
    assert [lifetime.name for lifetime in app.lifetimes][:2] == ["sessions", "memory"]
    assert app.routes[0].names == ("guard", "validation", "sessions", "cache", "memory", "routing")
    await app.startup()
    await app.shutdown()
    assert (tmp_path / "state" / "memory.sqlite3").exists()
