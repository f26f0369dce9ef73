from __future__ import annotations

from typing import Any

import orjson
from starlette.testclient import TestClient

from lynkr.middleware.validation import ValidationMiddleware

GOOD = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def client(echo: Any, **options: Any) -> TestClient:
    return TestClient(ValidationMiddleware(echo, **options))


def test_valid_request_reaches_the_app_with_its_exact_bytes(echo: Any) -> None:
    raw = b'{"model":"claude-x", "max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
    response = client(echo).post("/v1/messages", content=raw)
    assert response.status_code == 200
    assert response.json() == {
        "body": raw.decode(),
        "parsed": True,
        "pool": None,
        "route_reason": None,
    }


def test_body_over_the_limit_is_413_before_the_app(echo: Any) -> None:
    response = client(echo, max_body_bytes=50).post("/v1/messages", json=GOOD)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert "50 bytes" in response.json()["error"]["message"]


def test_invalid_json_is_400_saying_so(echo: Any) -> None:
    response = client(echo).post("/v1/messages", content=b"{not json")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]


def test_missing_field_names_its_path(echo: Any) -> None:
    response = client(echo).post("/v1/messages", json={"model": "m", "max_tokens": 1})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("messages: required")
    bad = {**GOOD, "messages": [{"role": "user"}]}
    response = client(echo).post("/v1/messages", json=bad)
    assert response.json()["error"]["message"] == "messages[0].content: required"


def test_count_tokens_needs_no_max_tokens(echo: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "foo"}]}
    response = client(echo).post("/v1/messages/count_tokens", content=orjson.dumps(body))
    assert response.status_code == 200


def test_get_requests_pass_untouched(echo: Any) -> None:
    response = client(echo).get("/v1/models")
    assert response.status_code == 200
    assert response.json()["parsed"] is False


def test_constructor_refuses_a_bad_limit(echo: Any) -> None:
    import pytest

    with pytest.raises(ValueError, match="max_body_bytes"):
        ValidationMiddleware(echo, max_body_bytes=0)
