"""`lynkr validate`'s safety warnings: unsafe configs load, are named, and fail `--strict`."""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.cli import main
from lynkr.config import load_config
from lynkr.config.safety import is_loopback, safety_warnings

BASE = """\
version: 1
server: {{host: {host}}}
providers:
  up: {{type: anthropic, base_url: "http://127.0.0.1:9", api_key: "k", model: m}}
pools: {{main: {{providers: [up]}}}}
routes:
  - path: /v1/messages
    middleware: [{first}]
    app: agent
  - path: /v1/chat/completions
    middleware: [{{use: openai_compat}}, {{use: routing}}]
    app: agent
"""
AUTH = "{use: auth, keys: [k1]}, {use: routing}"


def _warnings(tmp_path: Path, host: str, first: str) -> list[str]:
    path = tmp_path / "lynkr.yaml"
    path.write_text(BASE.format(host=host, first=first))
    return [issue.message for issue in safety_warnings(load_config(path))]


def test_auth_on_only_some_routes_is_named(tmp_path: Path) -> None:
    (warning,) = _warnings(tmp_path, "127.0.0.1", AUTH)
    assert warning.startswith("/v1/chat/completions has no `auth` while other routes do")


def test_an_open_bind_names_every_route_without_auth(tmp_path: Path) -> None:
    warnings = _warnings(tmp_path, "0.0.0.0", "{use: routing}")
    assert len(warnings) == 2
    assert all("lynkr binds 0.0.0.0" in w and "bind 127.0.0.1" in w for w in warnings)


def test_a_safe_config_and_the_shipped_one_have_no_warnings(tmp_path: Path) -> None:
    assert _warnings(tmp_path, "127.0.0.1", "{use: routing}") == []
    shipped = Path(__file__).resolve().parents[2] / "lynkr.yaml"
    assert safety_warnings(load_config(shipped)) == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("10.0.0.5", False), ("gateway.internal", False)],
)  # fmt: skip
def test_loopback_binds(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_strict_fails_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lynkr.yaml"
    path.write_text(BASE.format(host="0.0.0.0", first="{use: cache}, " + AUTH))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warning: routes[0].middleware[0]: `cache` runs before `auth`" in out
    assert out.rstrip().endswith(f"2 warnings in {path}")
    assert main(["validate", "--strict", str(path)]) == 1
    assert main(["validate", "--strict", "--format", "json", str(path)]) == 1
    assert '"severity": "warning"' in capsys.readouterr().out
