"""The routing and failover examples run as documented."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from ._load import load_example


def tools(n: int) -> list[dict[str, Any]]:
    return [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(n)]


@pytest.mark.parametrize("name", ["routing_starlette", "routing_fastapi"])
def test_routing_examples_choose_by_tool_count(name: str) -> None:
    client = TestClient(load_example(name).app)
    response = client.post("/v1/messages", json={"model": "claude-opus-4-8", "tools": tools(24)})
    assert response.json()["pool"] == "complex"
    assert response.headers["x-lynkr-route"].startswith("pool=complex; rule=tool_thresholds")


def test_routing_starlette_rules() -> None:
    client = TestClient(load_example("routing_starlette").app)
    response = client.post("/v1/messages", json={"model": "claude-haiku-4-5", "tools": tools(24)})
    assert response.json() == {"pool": "simple", "rule": "background"}


def test_routing_fastapi_sticky_sessions() -> None:
    client = TestClient(load_example("routing_fastapi").app)
    session = {"x-claude-code-session-id": "abc"}
    first = client.post("/v1/messages", json={"model": "m", "tools": tools(24)}, headers=session)
    again = client.post("/v1/messages", json={"model": "m", "tools": []}, headers=session)
    assert first.json()["pool"] == again.json()["pool"] == "complex"
    assert again.json()["rule"] == "sticky"


def test_failover_starlette_opens_on_server_errors() -> None:
    example = load_example("failover_starlette")
    client = TestClient(example.app)
    statuses = [client.post("/v1/messages", json={}).status_code for _ in range(4)]
    assert statuses == [502, 502, 502, 529]
    refused = client.post("/v1/messages", json={})
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert int(refused.headers["retry-after"]) >= 1


def test_failover_fastapi_answers_openai_shape_while_open() -> None:
    example = load_example("failover_fastapi")
    client = TestClient(example.app, raise_server_exceptions=False)
    for _ in range(2):
        assert client.post("/v1/chat/completions", json={}).status_code == 500
    refused = client.post("/v1/chat/completions", json={})
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "server_error"
    assert example.calls["count"] == 2  # the open breaker kept the handler out
