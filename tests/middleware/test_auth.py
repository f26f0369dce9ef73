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


def _caller_of(keys: list[Any], presented: str) -> tuple[int, str | None]:
    from lynkr.asgi import get_context

    seen: list[str | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(get_context(scope).caller)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    client = TestClient(AuthMiddleware(app, keys=keys))
    status = client.get("/v1/models", headers={"x-api-key": presented}).status_code
    return status, (seen[0] if seen else None)


def test_the_key_s_name_is_the_caller() -> None:
    keys: list[Any] = [{"name": "alice", "key": "ka"}, {"name": "bob", "key": "kb"}, "kc"]
    assert _caller_of(keys, "kb") == (204, "bob")
    assert _caller_of(keys, "ka") == (204, "alice")
    status, name = _caller_of(keys, "kc")
    assert status == 204 and name is not None and name.startswith("key-")
    assert "kc" not in name[4:] and name == _caller_of(["kc"], "kc")[1]  # stable, not the key
    assert _caller_of(keys, "nope") == (401, None)


def test_two_keys_cannot_share_a_name(echo: Any) -> None:
    with pytest.raises(ValueError, match="'team' is used twice"):
        AuthMiddleware(echo, keys=[{"name": "team", "key": "a"}, {"name": "team", "key": "b"}])
