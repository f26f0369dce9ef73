"""CacheMiddleware around a tiny Anthropic-speaking app: hits, misses, bypasses, single flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from fakes.anthropic_upstream import (
    Cut,
    Raw,
    Scenario,
    Sleep,
    cut_stream,
    error,
    stream_error,
    text,
    thinking,
    tool_use,
)

from lynkr.asgi import Message, Receive, Scope, Send, get_context
from lynkr.cache import StreamRecorder
from lynkr.middleware.cache import CacheMiddleware, Flights
from lynkr.stores.cache import Entry, MemoryStore

MODEL = "lynkr-test-model"
BODY = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**BODY, "stream": True}


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(20):
            await scenario()

    asyncio.run(bounded())


class WatchedFlights(Flights):
    """`Flights` that say when a request starts waiting behind an identical one (`parked`)."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = asyncio.Event()

    async def wait(self, key: str, seconds: float) -> bool:
        if key in self._events:
            self.parked.set()
        return await super().wait(key, seconds)


class Upstream:
    """An ASGI app speaking the Messages API from scripted fakes scenarios; counts requests.

    `gate`, when set, holds every answer until it is opened. A `Cut` step raises
    mid-stream, as an upstream connection drop reaches lynkr's inner app.
    """

    def __init__(self, *scenarios: Scenario, default: Scenario | None = None) -> None:
        self.queue = list(scenarios)
        self.default = default or text("Hello from the tiny upstream.")
        self.bodies: list[bytes] = []
        self.gate: asyncio.Event | None = None
        self.body_messages = 0
        self._called = asyncio.Event()

    @property
    def calls(self) -> int:
        return len(self.bodies)

    async def called(self, times: int) -> None:
        """Return once the app has been called `times` times (each call then waits at `gate`)."""
        while len(self.bodies) < times:
            self._called.clear()
            await self._called.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(raw)
        self._called.set()
        scenario = self.queue.pop(0) if self.queue else self.default
        if self.gate is not None:
            await self.gate.wait()
        request = orjson.loads(raw)
        if scenario.json_body is not None:
            await self._json(send, scenario.status, scenario.json_body)
        elif request.get("stream"):
            await self._stream(send, scenario)
        else:
            assert scenario.message is not None
            await self._json(send, 200, dict(scenario.message, model=request["model"]))

    async def _json(self, send: Send, status: int, payload: Any) -> None:
        data = orjson.dumps(payload)
        headers = [(b"content-type", b"application/json"), (b"request-id", b"req_up")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _stream(self, send: Send, scenario: Scenario) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for step in scenario.stream_steps(MODEL):
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                continue
            if isinstance(step, Cut):
                raise ConnectionResetError("upstream cut the stream")
            data = step.data if isinstance(step, Raw) else step.encode()
            self.body_messages += 1
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


class Response:
    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        start = messages[0]
        self.status: int = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        self.body = b"".join(m.get("body", b"") for m in messages[1:])

    @property
    def cache(self) -> str:
        return str(self.headers["x-lynkr-cache"])

    def json(self) -> Any:
        return orjson.loads(self.body)

    def message(self) -> dict[str, Any]:
        """The answer, from JSON or assembled from SSE."""
        if self.headers["content-type"].startswith("text/event-stream"):
            recorder = StreamRecorder(limit=1 << 24)
            recorder.feed(self.body)
            result = recorder.result()
            assert result is not None, self.body
            return result
        return dict(self.json())


async def call(
    app: Any,
    body: Any = BODY,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    method: str = "POST",
    path: str = "/v1/messages",
    raw: bytes | None = None,
    scope_extra: dict[str, Any] | None = None,
) -> Response:
    data = raw if raw is not None else orjson.dumps(body)
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", b"application/json"), *headers],
        "query_string": b"",
        **(scope_extra or {}),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}
        await asyncio.Event().wait()  # no disconnect
        raise AssertionError

    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return Response(messages)


def same_answer(one: dict[str, Any], two: dict[str, Any]) -> bool:
    ignore = {"id", "usage"}
    return {k: v for k, v in one.items() if k not in ignore} == {
        k: v for k, v in two.items() if k not in ignore
    }


# --------------------------------------------------------------------------- hits and misses


@pytest.mark.parametrize("first", [BODY, STREAM], ids=["stored from json", "stored from sse"])
@pytest.mark.parametrize("second", [BODY, STREAM], ids=["hit as json", "hit as sse"])
def test_a_repeat_is_a_hit_in_the_form_it_asks_for(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    upstream = Upstream(tool_use("ls", tool_id="toolu_hit_1"))
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        miss = await call(cache, first)
        hit = await call(cache, second)
        assert (miss.cache, hit.cache) == ("miss", "hit")
        assert upstream.calls == 1
        streaming = second.get("stream") is True
        assert hit.headers["content-type"].startswith(
            "text/event-stream" if streaming else "application/json"
        )
        assert same_answer(miss.message(), hit.message())
        assert hit.message()["id"] != miss.message()["id"]
        assert hit.message()["content"][1]["input"] == {
            "command": "ls",
            "description": "Run a command for the test",
        }

    run(scenario)


def test_a_hit_reports_the_prompt_as_cache_reads() -> None:
    usage = {"input_tokens": 40, "output_tokens": 9, "cache_read_input_tokens": 2}
    upstream = Upstream(text("cached", usage=usage))
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        await call(cache)
        hit = (await call(cache)).json()
        assert hit["usage"] == {
            "input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 42,
            "output_tokens": 9,
        }

    run(scenario)


def test_a_hit_has_a_request_id_and_records_its_time() -> None:
    cache = CacheMiddleware(Upstream())
    scopes: list[Scope] = []

    async def keeping_scope(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await cache(scope, receive, send)

    async def scenario() -> None:
        await call(keeping_scope)
        hit = await call(keeping_scope)
        context = get_context(scopes[1])
        assert hit.headers["request-id"] == context.request_id
        assert hit.cache == "hit"
        assert context.cache_key == get_context(scopes[0]).cache_key
        assert 0 < context.timings["cache"] < 0.05
        assert "cache" not in get_context(scopes[0]).timings

    run(scenario)


def test_volatile_parts_of_the_request_still_hit() -> None:
    upstream = Upstream()
    cache = CacheMiddleware(upstream)
    billing = {"type": "text", "text": "x-anthropic-billing-header: cc_version=1.a;"}
    first = {**BODY, "system": [billing, {"type": "text", "text": "Be brief."}]}
    second = {
        **BODY,
        "system": [
            {**billing, "text": "x-anthropic-billing-header: cc_version=1.b;"},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
        ],
        "metadata": {"user_id": "someone else"},
    }

    async def scenario() -> None:
        assert (await call(cache, first)).cache == "miss"
        assert (await call(cache, second)).cache == "hit"
        assert (await call(cache, {**second, "temperature": 0.5})).cache == "miss"
        assert upstream.calls == 2

    run(scenario)


def test_a_miss_forwards_the_clients_exact_bytes() -> None:
    upstream = Upstream()
    cache = CacheMiddleware(upstream)
    raw = b'{ "model" : "lynkr-test-model", "max_tokens":100,\n "messages":[{"role":"user",' + (
        b'"content":"hi","cache_control":{"type":"ephemeral"}}]}'
    )

    async def scenario() -> None:
        await call(cache, raw=raw)
        assert upstream.bodies == [raw]

    run(scenario)


def test_a_stream_passes_through_chunk_by_chunk() -> None:
    upstream = Upstream(text("a fairly long answer " * 5))
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        miss = await call(cache, STREAM)
        assert len(miss.messages) - 2 == upstream.body_messages  # start + final empty chunk
        assert miss.cache == "miss"

    run(scenario)


def test_entries_expire() -> None:
    now = [0.0]
    upstream = Upstream()
    cache = CacheMiddleware(upstream, ttl_seconds=10)
    cache.store = MemoryStore(clock=lambda: now[0])

    async def scenario() -> None:
        await call(cache)
        now[0] = 9.9
        assert (await call(cache)).cache == "hit"
        now[0] = 10.0
        assert (await call(cache)).cache == "miss"
        assert upstream.calls == 2

    run(scenario)


def test_the_pool_chosen_before_the_cache_is_part_of_the_key() -> None:
    upstream = Upstream()
    cache = CacheMiddleware(upstream)

    def routed(pool: str) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            get_context(scope).pool = pool
            await cache(scope, receive, send)

        return app

    async def scenario() -> None:
        assert (await call(routed("fast"))).cache == "miss"
        assert (await call(routed("smart"))).cache == "miss"
        assert (await call(routed("fast"))).cache == "hit"
        pool = [(b"x-lynkr-pool", b"other")]
        assert (await call(cache, headers=pool)).cache == "miss"
        assert (await call(cache, headers=pool)).cache == "hit"
        assert upstream.calls == 3

    run(scenario)


def test_a_broken_store_is_a_miss_not_an_error() -> None:
    class Broken(MemoryStore):
        async def get(self, key: str) -> Entry | None:
            raise OSError("disk on fire")

        async def set(self, key: str, entry: Entry, ttl: float) -> None:
            raise OSError("disk on fire")

    upstream = Upstream()
    cache = CacheMiddleware(upstream)
    cache.store = Broken()

    async def scenario() -> None:
        for _ in range(2):
            response = await call(cache)
            assert (response.status, response.cache) == (200, "miss")
        assert upstream.calls == 2

    run(scenario)


def test_sqlite_entries_survive_a_new_middleware(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.sqlite3")
    upstream = Upstream()

    async def scenario() -> None:
        first = CacheMiddleware(upstream, store="sqlite", path=path)
        assert (await call(first, STREAM)).cache == "miss"
        await first.aclose()
        second = CacheMiddleware(upstream, store="sqlite", path=path)
        hit = await call(second)
        await second.aclose()
        assert hit.cache == "hit"
        assert upstream.calls == 1

    run(scenario)


# --------------------------------------------------------------------------- what is never stored


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        pytest.param(error(500), BODY, id="500"),
        pytest.param(error(400), STREAM, id="400"),
        pytest.param(error(529), STREAM, id="529"),
        pytest.param(stream_error(), STREAM, id="event error mid-stream"),
        pytest.param(text(stop_reason="max_tokens"), BODY, id="max_tokens json"),
        pytest.param(text(stop_reason="max_tokens"), STREAM, id="max_tokens sse"),
        pytest.param(text(stop_reason="pause_turn"), BODY, id="pause_turn"),
        pytest.param(text(stop_reason="refusal"), STREAM, id="refusal"),
    ],
)
def test_only_complete_successful_answers_are_stored(
    answer: Scenario, body: dict[str, Any]
) -> None:
    upstream = Upstream(answer)
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        assert (await call(cache, body)).cache == "miss"
        assert (await call(cache, body)).cache == "miss"
        assert upstream.calls == 2

    run(scenario)


def test_a_cut_stream_is_not_stored() -> None:
    upstream = Upstream(cut_stream())
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        with pytest.raises(ConnectionResetError):
            await call(cache, STREAM)
        assert (await call(cache, STREAM)).cache == "miss"
        assert upstream.calls == 2
        assert cache.flights._events == {}

    run(scenario)


def test_max_tokens_stops_are_stored_when_configured() -> None:
    upstream = Upstream(text(stop_reason="max_tokens"))
    cache = CacheMiddleware(upstream, cache_max_tokens_stops=True)

    async def scenario() -> None:
        await call(cache, STREAM)
        hit = await call(cache)
        assert (hit.cache, hit.json()["stop_reason"]) == ("hit", "max_tokens")

    run(scenario)


def test_an_answer_over_max_bytes_is_not_stored() -> None:
    upstream = Upstream(text("x" * 4000))
    cache = CacheMiddleware(upstream, max_bytes=1000)

    async def scenario() -> None:
        for body in (STREAM, BODY):
            assert (await call(cache, body)).cache == "miss"
        assert upstream.calls == 2

    run(scenario)


def test_a_compressed_answer_is_not_stored() -> None:
    async def gzipped(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"\x1f\x8b..."})

    cache = CacheMiddleware(gzipped)

    async def scenario() -> None:
        await call(cache)
        assert (await call(cache)).cache == "miss"

    run(scenario)


# --------------------------------------------------------------------------- bypass


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/messages", [(b"cache-control", b"no-store")]),
        ("POST", "/v1/messages", [(b"cache-control", b"max-age=0, No-Cache")]),
        ("POST", "/v1/messages/count_tokens", []),
        ("POST", "/v1/chat/completions", []),
        ("GET", "/v1/models", []),
    ],
)
def test_bypassed_requests_are_neither_looked_up_nor_stored(
    method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    upstream = Upstream()
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        await call(cache)  # an entry for BODY exists
        for _ in range(2):
            response = await call(cache, method=method, path=path, headers=headers)
            assert response.cache == "bypass"
        assert upstream.calls == 3

    run(scenario)


def test_a_path_prefix_is_still_the_messages_endpoint() -> None:
    upstream = Upstream()
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        await call(cache, path="/proxy/azure/v1/messages")
        assert (await call(cache, path="/proxy/azure/v1/messages")).cache == "hit"

    run(scenario)


def test_a_body_that_is_not_json_gets_400_with_bypass() -> None:
    upstream = Upstream()
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        response = await call(cache, raw=b"{nope")
        assert (response.status, response.cache) == (400, "bypass")
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert upstream.calls == 0

    run(scenario)


# --------------------------------------------------------------------------- single flight


@pytest.mark.parametrize(("single_flight", "upstream_calls"), [(True, 1), (False, 2)])
def test_concurrent_identical_requests(single_flight: bool, upstream_calls: int) -> None:
    upstream = Upstream(thinking(), thinking())
    cache = CacheMiddleware(upstream, single_flight=single_flight)

    async def scenario() -> None:
        upstream.gate = asyncio.Event()
        cache.flights = flights = WatchedFlights()
        first = asyncio.create_task(call(cache, STREAM))
        second = asyncio.create_task(call(cache, BODY))
        await upstream.called(upstream_calls)  # both upstream, or the first alone…
        if single_flight:
            await flights.parked.wait()  # …and the second waiting behind it
        upstream.gate.set()
        one, two = await asyncio.gather(first, second)
        assert upstream.calls == upstream_calls
        assert one.cache == "miss"
        assert two.cache == ("hit" if single_flight else "miss")
        assert same_answer(one.message(), two.message())
        assert cache.flights._events == {}

    run(scenario)


def test_a_waiter_goes_upstream_when_the_first_fails() -> None:
    upstream = Upstream(error(500), text("second try"))
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        upstream.gate = asyncio.Event()
        cache.flights = flights = WatchedFlights()
        first = asyncio.create_task(call(cache))
        second = asyncio.create_task(call(cache))
        await upstream.called(1)
        await flights.parked.wait()  # the second waits for the first's answer
        upstream.gate.set()
        one, two = await asyncio.gather(first, second)
        assert (one.status, two.status) == (500, 200)
        assert two.cache == "miss"
        assert upstream.calls == 2
        assert (await call(cache)).cache == "hit"

    run(scenario)


def test_the_wait_is_bounded() -> None:
    upstream = Upstream()
    cache = CacheMiddleware(upstream, single_flight_wait_seconds=0.05)

    async def scenario() -> None:
        upstream.gate = asyncio.Event()
        cache.flights = flights = WatchedFlights()
        first = asyncio.create_task(call(cache))
        await upstream.called(1)  # the first is in flight, held at the gate
        second = asyncio.create_task(call(cache))
        async with asyncio.timeout(1):  # the wait is 0.05 s; unbounded it would be 60 s
            await upstream.called(2)
        assert flights.parked.is_set()  # the second did wait behind the first…
        assert upstream.calls == 2  # …then stopped waiting and went upstream
        upstream.gate.set()
        await asyncio.gather(first, second)

    run(scenario)


def test_many_concurrent_writers_leave_a_whole_entry() -> None:
    upstream = Upstream(*(text(f"answer {n}") for n in range(20)))
    cache = CacheMiddleware(upstream, single_flight=False)

    async def scenario() -> None:
        responses = await asyncio.gather(*(call(cache, STREAM) for _ in range(20)))
        answers = {r.message()["content"][0]["text"] for r in responses}
        hit = await call(cache)
        assert hit.cache == "hit"
        assert hit.json()["content"][0]["text"] in answers
        assert hit.json()["stop_reason"] == "end_turn"

    run(scenario)


# --------------------------------------------------------------------------- the anthropic SDK


def test_the_sdk_sees_the_same_message_live_and_from_the_cache() -> None:
    upstream = Upstream(tool_use("pwd", tool_id="toolu_sdk_1"))
    cache = CacheMiddleware(upstream)

    async def scenario() -> None:
        transport = httpx2.ASGITransport(app=cache)
        http = httpx2.AsyncClient(transport=transport, base_url="http://lynkr.test")
        client = anthropic.AsyncAnthropic(
            api_key="k", base_url="http://lynkr.test", http_client=http
        )
        async with client:
            finals = []
            for _ in range(2):
                async with client.messages.stream(
                    model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
                ) as stream:
                    finals.append(await stream.get_final_message())
            created = await client.messages.with_raw_response.create(
                model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            )
            parsed = await created.parse()
        live, replayed = finals
        assert created.headers["x-lynkr-cache"] == "hit"
        assert upstream.calls == 1
        same = {"id", "usage"}
        assert replayed.model_dump(exclude=same) == live.model_dump(exclude=same)
        assert parsed.model_dump(exclude=same) == live.model_dump(exclude=same)
        assert replayed.usage.cache_read_input_tokens == 25
        assert replayed.usage.input_tokens == 0

    run(scenario)


# --------------------------------------------------------------------------- options and lifespan


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"store": "redis"}, "store must be 'memory' or 'sqlite', got 'redis'"),
        ({"store": "sqlite"}, "store 'sqlite' needs `path`"),
        ({"path": "/tmp/c.sqlite3"}, "only used with store 'sqlite'"),
        ({"ttl_seconds": 0}, "ttl_seconds must be more than 0"),
        ({"ttl_seconds": "5m"}, "ttl_seconds must be a number of at least 0, got '5m'"),
        ({"max_entries": 0}, "max_entries must be a number of at least 1, got 0"),
        ({"max_bytes": -1}, "max_bytes must be a number of at least 1"),
        ({"single_flight_wait_seconds": -1}, "single_flight_wait_seconds must be"),
        ({"key_headers": "anthropic-beta"}, "key_headers must be a list"),
    ],
)
def test_bad_options_say_how_to_fix_them(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("`", "`")):
        CacheMiddleware(Upstream(), **options)


def test_lifespan_passes_through_and_shutdown_closes_the_store(tmp_path: Path) -> None:
    closed: list[bool] = []

    class Store(MemoryStore):
        async def close(self) -> None:
            closed.append(True)

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    cache = CacheMiddleware(inner)
    cache.store = Store()
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> Message:
        return next(events)

    async def send(message: Message) -> None:
        sent.append(message["type"])
        assert closed == ([True] if message["type"] == "lifespan.shutdown.complete" else [])

    run(lambda: cache({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
