"""The front door: Host allowlist, Origin check and CORS, JSON-only bodies, the body deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from lynkr.asgi import Message, parsed_body
from lynkr.middleware.guard import GuardMiddleware, host_name

JSON = {"content-type": "application/json"}


def _client(app: Any, **options: Any) -> TestClient:
    return TestClient(GuardMiddleware(app, **options), base_url="http://127.0.0.1:8080")


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8080", "localhost", "LOCALHOST.:8080", "app.localhost", "[::1]:8080",
     "10.1.2.3", "gateway.example"],
)  # fmt: skip
def test_allowed_hosts(echo: Any, host: str) -> None:
    client = _client(echo, allowed_hosts=["gateway.example"])
    assert client.get("/v1/models", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["rebind.evil.example", "localhost.evil.example", "example"])
def test_other_names_are_refused(echo: Any, host: str) -> None:
    response = _client(echo).get("/v1/lynkr/sessions", headers={"host": host})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "permission_error"
    assert f"allowed_hosts: [{host_name(host)}]" in error["message"]


def test_wildcards(echo: Any) -> None:
    client = _client(echo, allowed_hosts=["*.corp.example"])
    assert client.get("/", headers={"host": "lynkr.corp.example"}).status_code == 200
    assert client.get("/", headers={"host": "corp.example.evil"}).status_code == 403
    anything = _client(echo, allowed_hosts=["*"])
    assert anything.get("/", headers={"host": "whatever.example"}).status_code == 200


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None])  # fmt: skip
def test_bodies_must_be_json(echo: Any, media: str | None) -> None:
    headers = {"content-type": media} if media else {}
    response = _client(echo).post("/v1/messages", content=b"{}", headers=headers)
    assert response.status_code == 400
    assert "content-type: application/json" in response.json()["error"]["message"]
    ok = _client(echo).post(
        "/v1/messages", content=b"{}", headers={"content-type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 200


def test_openai_paths_get_openai_errors(echo: Any) -> None:
    response = _client(echo).post(
        "/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "param" in response.json()["error"]  # OpenAI's shape, not Anthropic's


def test_origins_and_cors(echo: Any) -> None:
    client = _client(echo, allowed_origins=["http://localhost:3000"])
    refused = client.post("/v1/messages", json={}, headers={"origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "server.allowed_origins" in refused.json()["error"]["message"]
    allowed = client.post("/v1/messages", json={}, headers={"origin": "http://localhost:3000"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    preflight = client.options(
        "/v1/messages",
        headers={
            "origin": "http://localhost:3000",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-api-key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-headers"] == "content-type, x-api-key"
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_an_origin_must_be_an_origin(echo: Any) -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        GuardMiddleware(echo, allowed_origins=["localhost:3000"])
    with pytest.raises(ValueError, match="above 0"):
        GuardMiddleware(echo, body_timeout_seconds=0)


async def _call(guard: GuardMiddleware, messages: list[Message], hang: bool) -> list[Message]:
    """Run one POST through `guard`: the body arrives as `messages`, then (if `hang`) stalls."""
    sent: list[Message] = []
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if hang:
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
    }
    await guard(scope, receive, send)
    return sent


async def _parsing_app(scope: Any, receive: Any, send: Any) -> None:
    """An app that is not lynkr's: it lets the deadline's error through."""
    await parsed_body(scope, receive)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


@pytest.mark.anyio
async def test_a_stalled_body_gets_408() -> None:
    guard = GuardMiddleware(_parsing_app, body_timeout_seconds=0.2)
    sent = await _call(guard, [{"type": "http.request", "body": b"{", "more_body": True}], True)
    assert sent[0]["status"] == 408
    assert b"body_timeout_seconds" in sent[1]["body"]


@pytest.mark.anyio
async def test_once_the_body_is_in_receive_is_not_timed() -> None:
    """A streaming answer waits on `receive` for the client's disconnect: never a 408."""
    waited: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await parsed_body(scope, receive)
        await asyncio.sleep(0.3)  # past the deadline, then wait for the disconnect
        waited.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    guard = GuardMiddleware(app, body_timeout_seconds=0.1)
    sent = await _call(guard, [{"type": "http.request", "body": b"{}"}], False)
    assert sent[0]["status"] == 200
    assert waited == [{"type": "http.disconnect"}]
