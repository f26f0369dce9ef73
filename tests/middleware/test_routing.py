"""Routing: golden decisions of the pure rules, the explain format, and the middleware."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from lynkr.middleware.routing import RoutingMiddleware, SessionPools
from lynkr.middleware.routing_rules import (
    RouteInput,
    RoutingTable,
    decide,
    explain,
    rules_from_options,
    session_id,
)

GOLDEN = json.loads((Path(__file__).parent / "golden" / "routing.json").read_text())


def tools(n: int) -> list[dict[str, Any]]:
    return [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(n)]


def table(name: str) -> RoutingTable:
    raw = dict(GOLDEN["tables"][name])
    raw["rules"] = rules_from_options(raw.get("rules", ()))
    return RoutingTable(**raw)


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
def test_golden_decisions(case: dict[str, Any]) -> None:
    body = dict(case.get("body", {"model": "claude-opus-4-8"}))
    if "tools" in case:
        body["tools"] = tools(case["tools"])
    if "long_text" in case:
        body["messages"] = [{"role": "user", "content": "x" * case["long_text"]}]
    request = RouteInput(case.get("headers", {}), body, sticky_pool=case.get("sticky_pool"))
    for explain_all in (False, True):
        decision = decide(table(case["table"]), request, explain_all=explain_all)
        assert (decision.pool, decision.rule) == (case["pool"], case["rule"])


def test_explain_format_is_stable() -> None:
    body = {"model": "claude-opus-4-8", "tools": tools(24), "thinking": {"type": "disabled"}}
    decision = decide(table("seed"), RouteInput({}, body), explain_all=True)
    estimate = decision.facts["estimated_input_tokens"]
    assert explain(decision) == "\n".join(
        [
            "request: model=claude-opus-4-8 tools=24 thinking=off "
            f"estimated_input_tokens={estimate}",
            "  header                   no    x-lynkr-pool absent",
            f"  rule long-context        no    estimated_input_tokens={estimate}<50000",
            "  rule background          no    model 'claude-opus-4-8' matches none of "
            "['claude-*haiku*']",
            "  rule deep-thought        no    thinking=off",
            "  rule team-b              no    header x-team=(absent)",
            "  sticky session           no    off",
            "  tool_thresholds          match tools=24>moderate=14",
            "decision: pool=complex rule=tool_thresholds",
        ]
    )


def test_the_token_estimate_is_skipped_when_no_rule_needs_it() -> None:
    decision = decide(table("plain"), RouteInput({}, {"model": "m", "tools": tools(3)}))
    assert "estimated_input_tokens" not in decision.facts


def test_rules_need_a_pool_and_a_condition() -> None:
    with pytest.raises(ValueError, match="needs a pool"):
        rules_from_options([{"model": "x"}])
    with pytest.raises(ValueError, match="no condition"):
        rules_from_options([{"name": "all", "pool": "p"}])


def test_session_id_from_header_or_metadata() -> None:
    assert session_id({"x-claude-code-session-id": "s1"}, None) == "s1"
    user_id = '{"device_id":"d","account_uuid":"","session_id":"s2"}'
    assert session_id({}, {"metadata": {"user_id": user_id}}) == "s2"
    assert session_id({}, {"metadata": {"user_id": "plain"}}) is None


def test_session_pools_lru_and_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    pools = SessionPools(ttl=10, capacity=2)
    pools.put("a", "p1")
    pools.put("b", "p2")
    pools.get("a")
    pools.put("c", "p3")  # evicts b, the least recently used
    assert (pools.get("a"), pools.get("b"), pools.get("c")) == ("p1", None, "p3")
    import lynkr.middleware.routing as module

    later = module.time.monotonic() + 11
    monkeypatch.setattr(module.time, "monotonic", lambda: later)
    assert pools.get("a") is None


def test_middleware_writes_context_and_header(echo: Any) -> None:
    app = RoutingMiddleware(echo, default_pool="main", tool_thresholds={"simple": 2, "moderate": 4})
    body = {"model": "m", "max_tokens": 1, "messages": [], "tools": tools(3)}
    response = TestClient(app).post("/v1/messages", json=body)
    assert response.json()["pool"] == "moderate"
    assert response.json()["body"]  # the inner app still receives the body bytes
    assert response.headers["x-lynkr-route"] == (
        "pool=moderate; rule=tool_thresholds; reason=tools=3<=moderate=4"
    )


def test_pool_header(echo: Any) -> None:
    app = RoutingMiddleware(echo, default_pool="main", tool_thresholds={"simple": 1, "moderate": 2})
    response = TestClient(app).post(
        "/v1/messages", content=b"not even json", headers={"x-lynkr-pool": "fast"}
    )
    assert response.json()["pool"] == "fast"
    assert response.json()["parsed"] is False  # a named pool needs no body
    assert response.headers["x-lynkr-route"].startswith("pool=fast; rule=header")


def test_without_rules_the_body_is_not_parsed(echo: Any) -> None:
    app = RoutingMiddleware(echo, default_pool="main")
    response = TestClient(app).post("/v1/messages", content=b"not json at all")
    assert response.json() == {
        "body": "not json at all",
        "parsed": False,
        "pool": "main",
        "route_reason": "default",
    }


def test_sticky_sessions_keep_the_pool_until_a_server_error() -> None:
    statuses = [200, 200, 500, 200]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        from lynkr.asgi import get_context, send_json

        await send_json(send, statuses.pop(0), orjson.dumps({"pool": get_context(scope).pool}))

    middleware = RoutingMiddleware(
        app,
        default_pool="main",
        tool_thresholds={"simple": 2, "moderate": 14},
        sticky_sessions=True,
    )
    client = TestClient(middleware)
    session = {"x-claude-code-session-id": "s-1"}
    many = {"model": "m", "tools": tools(20)}
    few = {"model": "m", "tools": []}
    assert client.post("/v1/messages", json=many, headers=session).json()["pool"] == "complex"
    # The title request carries no tools, but the session stays where its cache is.
    assert client.post("/v1/messages", json=few, headers=session).json()["pool"] == "complex"
    assert client.post("/v1/messages", json=few, headers=session).status_code == 500
    # After a server error the session is routed afresh.
    assert client.post("/v1/messages", json=few, headers=session).json()["pool"] == "simple"


def test_refuses_incomplete_thresholds(echo: Any) -> None:
    with pytest.raises(ValueError, match="moderate"):
        RoutingMiddleware(echo, tool_thresholds={"simple": 2})
    with pytest.raises(ValueError, match="at least"):
        RoutingMiddleware(echo, tool_thresholds={"simple": 5, "moderate": 2})
