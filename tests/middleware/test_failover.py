"""The failover middleware in front of a plain app: one breaker per route, not per path."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from lynkr.asgi import Receive, Scope, Send
from lynkr.middleware.failover import FailoverMiddleware
from lynkr.resilience import CircuitBreaker


async def failing_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"broken"})


def test_invented_paths_make_no_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    original = CircuitBreaker.__init__

    def counted(self: CircuitBreaker, name: str, *args: Any, **kwargs: Any) -> None:
        made.append(name)
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(CircuitBreaker, "__init__", counted)
    middleware = FailoverMiddleware(failing_app, consecutive_failures=1000, minimum_calls=1000)
    client = TestClient(middleware, base_url="http://localhost")  # no lifespan: a bare app
    for index in range(300):
        assert client.get(f"/v1/messages/invented-{index}").status_code == 500
    assert made == ["app"]  # each path used to get a breaker of its own, kept forever


@pytest.mark.parametrize("path", ["/v1/messages", "/anything/else"])
def test_the_route_s_breaker_opens_for_every_path(path: str) -> None:
    middleware = FailoverMiddleware(failing_app, consecutive_failures=2, minimum_calls=100)
    client = TestClient(middleware, base_url="http://localhost")
    assert client.get("/v1/messages/a").status_code == 500
    assert client.get("/elsewhere/b").status_code == 500  # two paths, one breaker: it opens
    refused = client.get(path)
    assert refused.status_code == 529
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert int(refused.headers["retry-after"]) >= 1
