"""Shedding over tiny ASGI apps: the 529/503 shapes, exemptions, and every way a slot comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from lynkr.asgi import Message, Receive, Scope, Send, send_json
from lynkr.middleware.shedding import SheddingMiddleware

pytestmark = pytest.mark.anyio


def http_scope(path: str = "/v1/messages") -> Scope:
    return {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}


async def unread(*_: Any) -> Message:
    raise AssertionError("the body was read")


class Recorder:
    """A `send` that keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    def json(self) -> Any:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


class Gated:
    """An app that answers 200 once its gate opens; `entered` counts requests inside."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.gate.wait()
        await send_json(send, 200, b"{}")


async def fill(shedding: SheddingMiddleware, count: int) -> list[asyncio.Task[None]]:
    """`count` requests that take a slot each and stay inside the app."""
    tasks = [asyncio.create_task(shedding(http_scope(), unread, Recorder())) for _ in range(count)]
    await asyncio.sleep(0)
    return tasks


# --------------------------------------------------------------------------- admitted


def test_admitted_requests_pass_through_untouched(echo: Any) -> None:
    shedding = SheddingMiddleware(echo)
    response = TestClient(shedding).post("/v1/messages", content=b'{"a": 1}')
    assert response.status_code == 200
    assert response.json()["body"] == '{"a": 1}'
    assert "retry-after" not in response.headers
    counters = shedding.counters.snapshot()
    assert (counters["admitted"], counters["released"], counters["in_flight"]) == (1, 1, 0)


# --------------------------------------------------------------------------- shed


async def test_over_capacity_gets_anthropic_529_without_the_body_read() -> None:
    app = Gated()
    shedding = SheddingMiddleware(app, max_concurrent=1, max_queue=0)
    tasks = await fill(shedding, 1)
    send = Recorder()
    await shedding(http_scope(), unread, send)
    assert send.status == 529
    assert send.headers["retry-after"] == "2"
    assert send.headers["x-should-retry"] == "true"
    assert send.headers["content-type"] == "application/json"
    assert send.headers["request-id"].startswith("req_lynkr_")
    body = send.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "overloaded_error"
    assert "max_concurrent" in body["error"]["message"]
    assert app.entered == 1
    app.gate.set()
    await asyncio.gather(*tasks)
    assert shedding.counters.snapshot()["shed"] == 1


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/proxy/openai/v1/chat/completions"])
async def test_openai_routes_get_503_in_openai_shape(path: str) -> None:
    app = Gated()
    shedding = SheddingMiddleware(app, max_concurrent=1, max_queue=0, retry_after_seconds=5)
    tasks = await fill(shedding, 1)
    send = Recorder()
    await shedding(http_scope(path), unread, send)
    assert send.status == 503
    assert send.headers["retry-after"] == "5"
    error = send.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "server_error")
    assert "at capacity" in error["message"]
    app.gate.set()
    await asyncio.gather(*tasks)


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_exempt_paths_bypass_a_full_limiter(path: str) -> None:
    app = Gated()
    shedding = SheddingMiddleware(app, max_concurrent=1, max_queue=0)
    tasks = await fill(shedding, 1)
    app.gate.set()
    send = Recorder()
    await shedding(http_scope(path), unread, send)
    assert send.status == 200
    await asyncio.gather(*tasks)
    assert shedding.counters.admitted == 1  # the exempt request took no slot


async def test_exempt_paths_are_an_option() -> None:
    app = Gated()
    shedding = SheddingMiddleware(app, max_concurrent=1, max_queue=0, exempt_paths=["/live"])
    tasks = await fill(shedding, 1)
    send = Recorder()
    await shedding(http_scope("/health"), unread, send)
    assert send.status == 529
    app.gate.set()
    await asyncio.gather(*tasks)


async def test_burst_of_ten_times_capacity() -> None:
    """The excess is answered 529 at once while the admitted ones still run; they complete."""

    app = Gated()
    shedding = SheddingMiddleware(app, max_concurrent=3, max_queue=0)
    sends = [Recorder() for _ in range(30)]
    tasks = [asyncio.create_task(shedding(http_scope(), unread, s)) for s in sends]
    await asyncio.sleep(0)
    answered = [s.status for s in sends if s.messages]
    assert answered == [529] * 27
    app.gate.set()
    await asyncio.gather(*tasks)
    assert sorted(s.status for s in sends) == [200] * 3 + [529] * 27
    assert shedding.counters.snapshot() == {
        "in_flight": 0,
        "queued": 0,
        "admitted": 3,
        "shed": 27,
        "abandoned": 0,
        "released": 3,
    }


async def test_a_queued_request_gets_the_next_free_slot() -> None:
    app = Gated()
    shedding = SheddingMiddleware(app, max_concurrent=1, max_queue=1, max_queue_wait_ms=30_000)
    first, second = Recorder(), Recorder()
    tasks = [
        asyncio.create_task(shedding(http_scope(), unread, first)),
        asyncio.create_task(shedding(http_scope(), unread, second)),
    ]
    await asyncio.sleep(0)
    assert (app.entered, shedding.counters.queued) == (1, 1)
    app.gate.set()
    await asyncio.gather(*tasks)
    assert (first.status, second.status) == (200, 200)


async def test_other_scope_types_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    shedding = SheddingMiddleware(app, max_concurrent=1)
    await shedding({"type": "websocket", "path": "/v1/messages"}, unread, Recorder())
    await shedding({"type": "lifespan"}, unread, Recorder())
    assert seen == ["websocket", "lifespan"]
    assert shedding.counters.admitted == 0


# --------------------------------------------------------------------------- release


class Lingering:
    """Runs `script(receive, send)` and then stays inside until `leave` is set."""

    def __init__(self, script: Callable[[Receive, Send], Awaitable[None]]) -> None:
        self.script = script
        self.leave = asyncio.Event()
        self.reached_end = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.script(receive, send)
        self.reached_end.set()
        await self.leave.wait()


async def test_slot_released_when_the_response_ends_even_if_the_app_lingers() -> None:
    async def answer(receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        assert shedding.counters.in_flight == 1  # mid-stream: still held
        await send({"type": "http.response.body", "body": b"b"})

    app = Lingering(answer)
    shedding = SheddingMiddleware(app, max_concurrent=1)
    task = asyncio.create_task(shedding(http_scope(), unread, Recorder()))
    await app.reached_end.wait()
    assert shedding.counters.in_flight == 0
    app.leave.set()
    await task
    assert shedding.counters.released == 1


async def test_slot_released_on_client_disconnect() -> None:
    async def listen(receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    messages: list[Message] = [
        {"type": "http.request", "body": b"{}", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    app = Lingering(listen)
    shedding = SheddingMiddleware(app, max_concurrent=1)
    task = asyncio.create_task(shedding(http_scope(), receive, Recorder()))
    await app.reached_end.wait()
    assert shedding.counters.in_flight == 0
    app.leave.set()
    await task
    assert shedding.counters.released == 1


@pytest.mark.parametrize("after_start", [False, True])
async def test_slot_released_when_the_app_raises(after_start: bool) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if after_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        raise RuntimeError("boom")

    shedding = SheddingMiddleware(app, max_concurrent=1)
    with pytest.raises(RuntimeError, match="boom"):
        await shedding(http_scope(), unread, Recorder())
    assert shedding.counters.snapshot()["in_flight"] == 0
    assert shedding.counters.released == 1


async def test_slot_released_when_the_stream_is_cut() -> None:
    async def streams(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(5):
            await send({"type": "http.response.body", "body": b"event", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    sent = 0

    async def cut(message: Message) -> None:
        nonlocal sent
        sent += 1
        if sent == 3:
            raise OSError("connection reset by peer")

    shedding = SheddingMiddleware(streams, max_concurrent=1)
    with pytest.raises(OSError, match="reset"):
        await shedding(http_scope(), unread, cut)
    assert (shedding.counters.in_flight, shedding.counters.released) == (0, 1)


async def test_slot_released_when_the_request_is_cancelled() -> None:
    app = Gated()
    shedding = SheddingMiddleware(app, max_concurrent=1)
    (task,) = await fill(shedding, 1)
    assert shedding.counters.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (shedding.counters.in_flight, shedding.counters.released) == (0, 1)


async def test_slot_released_once_when_several_endings_coincide() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, b"{}")  # final body: released here
        assert (await receive())["type"] == "http.disconnect"  # and again here
        raise RuntimeError("and once more on the way out")

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    shedding = SheddingMiddleware(app, max_concurrent=2)
    with pytest.raises(RuntimeError):
        await shedding(http_scope(), gone, Recorder())
    assert shedding.counters.snapshot()["released"] == 1
    assert shedding.counters.in_flight == 0


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrent": 0}, "max_concurrent must be at least 1, got 0"),
        ({"max_queue": -1}, "max_queue must be 0"),
        ({"max_queue_wait_ms": -5}, "max_queue_wait_ms must be 0 .* got -5"),
        ({"retry_after_seconds": 0}, "retry_after_seconds must be between 1 and 60"),
        ({"retry_after_seconds": 61}, "clients ignore longer waits"),
        ({"exempt_paths": "/health"}, "exempt_paths must be a list of paths"),
        ({"openai_paths": ["v1/chat/completions"]}, "openai_paths: paths start with '/'"),
    ],
)
def test_options_are_checked(echo: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SheddingMiddleware(echo, **options)


def test_defaults_are_the_recommended_set(echo: Any) -> None:
    shedding = SheddingMiddleware(echo)
    state = shedding.counters
    assert (state.max_concurrent, state.max_queue) == (64, 64)
    assert not hasattr(shedding, "active")  # a real middleware, not a pass-through
