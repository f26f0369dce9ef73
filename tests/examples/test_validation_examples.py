"""The validation examples run as shipped: good requests reach the app, bad ones get a 4xx."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from ._load import load_example

GOOD = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
NAMES = ["validation_starlette", "validation_fastapi"]


@pytest.fixture(params=NAMES)
def client(request: pytest.FixtureRequest) -> TestClient:
    return TestClient(load_example(request.param).app)


def test_a_valid_request_reaches_the_app(client: TestClient) -> None:
    response = client.post("/v1/messages", json=GOOD)
    assert response.status_code == 200
    assert response.json() == {"type": "message", "model": "claude-x", "turns": 1}


def test_count_tokens_takes_no_max_tokens(client: TestClient) -> None:
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "foo"}]}
    response = client.post("/v1/messages/count_tokens", json=body)
    assert response.status_code == 200
    assert "input_tokens" in response.json()


def test_a_broken_request_is_a_400_naming_the_path(client: TestClient) -> None:
    bad = {**GOOD, "messages": [{"role": "bot", "content": "hi"}]}
    response = client.post("/v1/messages", json=bad)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "messages[0].role: expected one of 'user', 'assistant', 'system', got 'bot'",
    }


def test_an_oversized_body_is_a_413(client: TestClient) -> None:
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 1_000_000}]}
    response = client.post("/v1/messages", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_get_routes_pass_through(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
