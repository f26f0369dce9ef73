"""The suite-wide secret scan itself: it finds a configured key in a server's log, in any form."""

from __future__ import annotations

import base64
from pathlib import Path

from conftest import LynkrServer, leaked_secrets, lynkr_config

KEY = "sk-ant-api03-SCANCANARY0123456789abcdef"
CLIENT = "client-key-SCANCANARY-0123"


def _server(tmp_path: Path, log: str) -> LynkrServer:
    config = tmp_path / "lynkr.yaml"
    providers = {"fake": {"type": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": KEY,
                          "model": "m"}}  # fmt: skip
    middleware = [{"use": "auth", "keys": [{"name": "team", "key": CLIENT}]}, {"use": "routing"}]
    lynkr_config("http://127.0.0.1:9", tmp_path / "data", path=config, providers=providers,
                 middleware=middleware)  # fmt: skip
    (tmp_path / "stderr.log").write_text(log)
    return LynkrServer(config, tmp_path)


def test_a_clean_log_passes(tmp_path: Path) -> None:
    assert leaked_secrets(_server(tmp_path, '{"event": "request", "caller": "team"}\n')) == []


def test_a_key_in_any_form_is_found(tmp_path: Path) -> None:
    for log in (f"upstream said {KEY}", base64.b64encode(f"x {KEY} y".encode()).decode(),
                KEY[::-1], f"Bearer {CLIENT}"):  # fmt: skip
        assert leaked_secrets(_server(tmp_path, log)) != [], log


def test_a_key_in_what_a_client_received_is_found(tmp_path: Path) -> None:
    server = _server(tmp_path, "clean log\n")
    server.client_bytes_path.write_bytes(
        b'HTTP/1.1 200 OK\r\n\r\n{"text": "' + KEY.encode() + b'"}'
    )
    assert leaked_secrets(server) != []
