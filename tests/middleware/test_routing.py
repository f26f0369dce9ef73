from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from lynkr.middleware.routing import RoutingMiddleware, choose_pool


def tools(n: int) -> list[dict[str, Any]]:
    return [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(n)]


@pytest.mark.parametrize(
    ("count", "pool"),
    [(0, "simple"), (2, "simple"), (3, "moderate"), (14, "moderate"), (15, "complex")],
)
def test_tool_thresholds(count: int, pool: str) -> None:
    chosen, reason = choose_pool(
        named_pool=None,
        tools=tools(count),
        tool_thresholds={"simple": 2, "moderate": 14},
        default_pool="x",
    )
    assert chosen == pool
    assert reason.startswith(f"tools={count}")


def test_header_wins_then_default() -> None:
    assert choose_pool(
        named_pool="fast",
        tools=tools(20),
        tool_thresholds={"simple": 1, "moderate": 2},
        default_pool="d",
    ) == ("fast", "header")
    assert choose_pool(named_pool=None, tools=None, tool_thresholds=None, default_pool="d") == (
        "d",
        "default",
    )


def test_middleware_writes_context_and_header(echo: Any) -> None:
    app = RoutingMiddleware(echo, default_pool="main", tool_thresholds={"simple": 2, "moderate": 4})
    body = {"model": "m", "max_tokens": 1, "messages": [], "tools": tools(3)}
    response = TestClient(app).post("/v1/messages", json=body)
    assert response.json()["pool"] == "moderate"
    assert response.json()["body"]  # the inner app still receives the body bytes
    assert response.headers["x-lynkr-route"] == "pool=moderate; rule=tools=3<=4"


def test_pool_header(echo: Any) -> None:
    app = RoutingMiddleware(echo, default_pool="main")
    response = TestClient(app).post("/v1/messages", json={}, headers={"x-lynkr-pool": "fast"})
    assert response.json()["pool"] == "fast"
    assert response.headers["x-lynkr-route"] == "pool=fast; rule=header"


def test_without_thresholds_the_body_is_not_parsed(echo: Any) -> None:
    app = RoutingMiddleware(echo, default_pool="main")
    response = TestClient(app).post("/v1/messages", content=b"not json at all")
    assert response.json() == {
        "body": "not json at all",
        "parsed": False,
        "pool": "main",
        "route_reason": "default",
    }


def test_refuses_incomplete_thresholds(echo: Any) -> None:
    with pytest.raises(ValueError, match="moderate"):
        RoutingMiddleware(echo, tool_thresholds={"simple": 2})
    with pytest.raises(ValueError, match="at least"):
        RoutingMiddleware(echo, tool_thresholds={"simple": 5, "moderate": 2})
