from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from lynkr.middleware.auth import AuthMiddleware


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "k2"},
        {"authorization": "Bearer k2"},
        {"x-api-key": "k2", "authorization": "Bearer k2"},
        {"x-api-key": "wrong", "authorization": "Bearer k1"},
    ],
)
def test_accepts_either_header(echo: Any, headers: dict[str, str]) -> None:
    client = TestClient(AuthMiddleware(echo, keys=["k1", "k2"]))
    assert client.post("/v1/messages", json={}, headers=headers).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "nope"}, {"authorization": "Basic k1"}])
def test_refuses_others_with_anthropic_401(echo: Any, headers: dict[str, str]) -> None:
    client = TestClient(AuthMiddleware(echo, keys=["k1"]))
    response = client.post("/v1/messages", json={}, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["type"] == "authentication_error"
    assert "ANTHROPIC_API_KEY" in body["error"]["message"]
    assert "k1" not in response.text


def test_needs_a_key(echo: Any) -> None:
    with pytest.raises(ValueError, match="at least one"):
        AuthMiddleware(echo, keys=[""])


def test_probes_need_no_key(echo: Any) -> None:
    client = TestClient(AuthMiddleware(echo, keys=["k1"]))
    assert client.head("/").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/proxy/v1/models").status_code == 401
