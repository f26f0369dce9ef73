"""The fault-injection matrix against real servers.

Client (httpx) → `lynkr serve` (subprocess) → the fake upstream, all on loopback. Two
providers share the one fake under different path prefixes, `/primary` and `/backup`, so
the fake's recorded paths say which provider was called, in which order, how often. Each
case asserts what the client sees (status, error type, SSE frames), whether lynkr fell
back (`x-lynkr-provider`, the paths the fake saw) and, where it matters, what the
primary's circuit breaker did (a later request that skips `/primary` entirely).

Breaker state lives in each lynkr process, so a case that makes `primary` fail gets a
lynkr of its own (`serve(..., name)`); cases that leave the breakers alone share one.
Stack: `[shedding(max_concurrent 4, no queue), validation(1 MB), routing,
failover(retries 1, consecutive_failures 3, open 30 s, backoff 0.01-0.05 s)]`; primary
has `timeout: {connect: 1, read: 1}`. The outcomes are tabled in FAULT_MATRIX.md next to this file.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import LynkrServer
from fakes.anthropic_upstream import (
    FakeAnthropic,
    Raw,
    Scenario,
    cut_stream,
    error,
    slow_text,
    text,
)

pytestmark = pytest.mark.e2e

MODEL = "claude-opus-4-8"
TIMEOUT = 10.0
MIDDLEWARE: list[dict[str, Any]] = [
    {"use": "shedding", "max_concurrent": 4, "max_queue": 0},
    {"use": "validation", "max_body_bytes": 1_000_000},
    {"use": "routing"},
    {
        "use": "failover",
        "retries": 1,
        "consecutive_failures": 3,
        "open_seconds": 30,
        "backoff_base_seconds": 0.01,
        "backoff_cap_seconds": 0.05,
    },
]
HEADERS = {"x-api-key": "client-key", "anthropic-version": "2023-06-01"}
ESCAPED = ("Traceback", "Exception in ASGI application", "Unhandled")

# Every lynkr this module started, for the closing "no exception escaped" check.
_STARTED: dict[str, LynkrServer] = {}


# --------------------------------------------------------------------------- helpers


def serve(
    lynkr_server: Callable[..., LynkrServer],
    fake: FakeAnthropic,
    name: str,
    *,
    primary_url: str | None = None,
    failover: dict[str, Any] | None = None,
) -> LynkrServer:
    """A lynkr named `name` (one per breaker history) with providers primary and backup;
    `failover` adds options to the failover middleware's."""
    providers = {
        "primary": {
            "type": "anthropic",
            "base_url": primary_url or f"{fake.url}/primary",
            "api_key": "primary-key",
            "model": "primary-model",
            "timeout": {"connect": 1, "read": 1},
        },
        "backup": {
            "type": "anthropic",
            "base_url": f"{fake.url}/backup",
            "api_key": "backup-key",
            "model": "backup-model",
        },
    }
    server = lynkr_server(
        f"fault-{name}",
        providers=providers,
        pools={"main": {"providers": ["primary"], "fallback": ["backup"]}},
        default_pool="main",
        middleware=[*MIDDLEWARE[:3], {**MIDDLEWARE[3], **(failover or {})}],
    )
    _STARTED[name] = server
    return server


def body(stream: bool = True, **fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **fields,
    }


def post(server: LynkrServer, payload: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        return client.post(f"{server.url}/v1/messages", json=payload, headers=HEADERS)


def prefixes(fake: FakeAnthropic) -> list[str]:
    """Which provider each upstream /v1/messages call went to, in order."""
    return [record.path.split("/")[1] for record in fake.message_requests()]


def sse(raw: str) -> list[tuple[str, Any]]:
    """(event, data) of each SSE frame; data stays a string when it is not JSON."""
    frames: list[tuple[str, Any]] = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if event is not None:
            joined = "".join(data)
            try:
                frames.append((event, json.loads(joined)))
            except ValueError:
                frames.append((event, joined))
    return frames


def streamed_text(response: httpx.Response) -> str:
    return "".join(
        data["delta"].get("text", "")
        for name, data in sse(response.text)
        if name == "content_block_delta"
    )


def assert_error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload: dict[str, Any] = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == kind, payload
    return payload


def assert_answered_by(response: httpx.Response, provider: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-lynkr-provider"] == provider
    if response.headers["content-type"].startswith("text/event-stream"):
        names = [name for name, _ in sse(response.text)]
        assert names[0] == "message_start" and names[-1] == "message_stop", names
        assert "error" not in names
    else:
        assert response.json()["type"] == "message"


class RawUpstream:
    """A loopback HTTP server that answers every request with the same raw bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.paths: list[str] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                length = int(found.group(1)) if found else 0
                while len(rest) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                outer.paths.append(head.split(b" ")[1].decode())
                sock.sendall(outer.answer)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RawUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module", autouse=True)
def no_exception_escaped() -> Iterator[None]:
    """After the module: no lynkr it started logged an unhandled exception."""
    yield
    for name, server in _STARTED.items():
        log = server.stderr_text(limit=2_000_000)
        for marker in ESCAPED:
            assert marker not in log, f"lynkr {name!r} logged {marker!r}:\n{log[-4000:]}"


# --------------------------------------------------------------------------- upstream 5xx


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_upstream_5xx_retried_then_fallback_then_breaker_opens(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer], status: int
) -> None:
    server = serve(lynkr_server, fake, f"5xx-{status}")
    # 1: the first try and its one retry fail, the fallback answers.
    fake.script(error(status), error(status))
    first = post(server, body())
    assert_answered_by(first, "backup")
    assert prefixes(fake) == ["primary", "primary", "backup"]
    # 2: the primary's third failure in a row opens its breaker: no retry on it.
    fake.reset()
    fake.script(error(status))
    second = post(server, body())
    assert_answered_by(second, "backup")
    assert prefixes(fake) == ["primary", "backup"]
    # 3: the breaker is open: straight to the fallback, no /primary request at all.
    fake.reset()
    third = post(server, body(stream=False))
    assert_answered_by(third, "backup")
    assert prefixes(fake) == ["backup"]


# --------------------------------------------------------------------------- 429


def test_429_retry_after_honoured_on_same_provider_not_a_breaker_failure(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "429")
    fake.script(error(429, headers={"retry-after": "1"}), text("after the wait"))
    started = time.monotonic()
    response = post(server, body())
    waited = time.monotonic() - started
    assert_answered_by(response, "primary")
    assert prefixes(fake) == ["primary", "primary"]
    assert 0.9 <= waited < 5, f"the retry came after {waited:.2f} s, not after retry-after: 1"
    assert streamed_text(response) == "after the wait"

    # Four more 429s in a row (retry-after: 0, so no wait): a counted failure would have
    # opened the breaker at the third; the primary is still called and still answers.
    fake.reset()
    fake.script(*[error(429, headers={"retry-after": "0"})] * 2)
    exhausted = post(server, body())
    assert_answered_by(exhausted, "backup")  # 429 twice: the pool moves on
    assert prefixes(fake) == ["primary", "primary", "backup"]
    fake.reset()
    fake.script(error(429, headers={"retry-after": "0"}), error(429, headers={"retry-after": "0"}))
    again = post(server, body())
    assert_answered_by(again, "backup")
    assert prefixes(fake) == ["primary", "primary", "backup"]
    fake.reset()
    still = post(server, body())
    assert_answered_by(still, "primary")
    assert prefixes(fake) == ["primary"]


def test_retry_after_longer_than_max_moves_on(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "429-long", failover={"max_retry_after_seconds": 1})
    fake.script(error(429, headers={"retry-after": "5"}))
    started = time.monotonic()
    response = post(server, body())
    took = time.monotonic() - started
    assert_answered_by(response, "backup")
    assert prefixes(fake) == ["primary", "backup"]
    assert took < 0.8, f"waited {took:.2f} s for a retry-after it should not honour"


# --------------------------------------------------------------------------- unreachable


def test_connection_refused_no_retry_fallback_and_breaker(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer], closed_port: int
) -> None:
    server = serve(lynkr_server, fake, "refused", primary_url=f"http://127.0.0.1:{closed_port}")
    first = post(server, body())
    assert_answered_by(first, "backup")
    assert prefixes(fake) == ["backup"]

    # With the backup failing too, the 529's trail shows the primary was tried once.
    fake.reset()
    fake.script(error(500), error(500))
    both = post(server, body())
    payload = assert_error(both, 529, "overloaded_error")
    message = payload["error"]["message"]
    assert message.count("primary: 502 api_error") == 1, message
    assert message.count("backup: 502 api_error") == 2, message
    assert int(both.headers["retry-after"]) >= 1

    # The third refused connection opens the primary's breaker...
    fake.reset()
    assert_answered_by(post(server, body()), "backup")
    # ...so the next all-failing request names it open instead of trying it.
    fake.reset()
    fake.script(error(500), error(500))
    refused = post(server, body())
    message = assert_error(refused, 529, "overloaded_error")["error"]["message"]
    assert "primary: circuit open" in message, message
    assert prefixes(fake) == ["backup", "backup"]


def test_dns_unreachable_falls_back(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "dns", primary_url="http://lynkr-test.invalid")
    started = time.monotonic()
    response = post(server, body())
    assert_answered_by(response, "backup")
    assert prefixes(fake) == ["backup"]
    assert time.monotonic() - started < 3.5  # at worst connect 1 s, and one retry
    # A name that does not resolve is a connection error: tried once, not retried.
    fake.reset()
    fake.script(error(500), error(500))
    both = post(server, body())
    message = assert_error(both, 529, "overloaded_error")["error"]["message"]
    assert message.count("primary: 502 api_error") == 1, message


def test_slow_first_byte_past_read_timeout_falls_back(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "slow-first-byte")
    fake.script(text(headers_delay=2), text(headers_delay=2))
    started = time.monotonic()
    response = post(server, body())
    took = time.monotonic() - started
    assert_answered_by(response, "backup")
    assert prefixes(fake) == ["primary", "primary", "backup"]
    assert 1.9 <= took < 4, f"two 1 s read timeouts and a fallback took {took:.2f} s"
    assert fake.wait_for_disconnects(2, timeout=3)  # lynkr hung up on both slow tries


# --------------------------------------------------------------------------- after the 200


def test_stream_cut_midway_becomes_error_event_without_fallback(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "cut")
    fake.script(cut_stream("This answer will be cut off", after_deltas=2))
    response = post(server, body())
    assert response.status_code == 200
    assert response.headers["x-lynkr-provider"] == "primary"
    frames = sse(response.text)
    names = [name for name, _ in frames]
    assert names[0] == "message_start" and names.count("content_block_delta") == 2
    assert names[-1] == "error" and "message_stop" not in names
    assert frames[-1][1]["type"] == "error"
    assert frames[-1][1]["error"]["type"] == "api_error"
    assert prefixes(fake) == ["primary"]  # committed: no silent switch mid-message

    # A cut is a failure for the breaker: after three, the primary is skipped.
    fake.reset()
    fake.script(cut_stream(), cut_stream())
    for _ in range(2):
        assert sse(post(server, body()).text)[-1][0] == "error"
    fake.reset()
    assert_answered_by(post(server, body()), "backup")
    assert prefixes(fake) == ["backup"]


def test_malformed_sse_becomes_error_event_without_fallback(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "malformed-sse")
    junk = Scenario(
        status=200,
        steps=[Raw(b"this is not SSE at all\n\n"), Raw(b"event: message_start\ndata: {oops\n\n")],
        name="junk_sse",
    )
    fake.script(junk)
    response = post(server, body())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-lynkr-provider"] == "primary"
    assert response.text.startswith("this is not SSE at all\n\n")  # relayed as it came
    frames = sse(response.text)
    assert frames[-1][0] == "error", response.text
    assert frames[-1][1]["error"]["type"] == "api_error"
    assert prefixes(fake) == ["primary"]


# --------------------------------------------------------------------------- malformed 200s


def test_malformed_json_200_falls_back(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    truncated = b'{"type": "message", "role": "assistant", "content": [{"type": "te'
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(truncated)}\r\nconnection: close\r\n\r\n".encode()
        + truncated
    )
    with RawUpstream(answer) as raw:
        server = serve(lynkr_server, fake, "malformed-json", primary_url=raw.url)
        response = post(server, body(stream=False))
        assert_answered_by(response, "backup")
        assert raw.paths == ["/v1/messages", "/v1/messages"]  # a failure: retried once
    assert prefixes(fake) == ["backup"]


def test_200_with_error_body_falls_back(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "error-body")
    bad = Scenario(
        status=200,
        json_body={"type": "error", "error": {"type": "api_error", "message": "hidden failure"}},
        name="ok_with_error",
    )
    fake.script(bad, bad)
    response = post(server, body(stream=False))
    assert_answered_by(response, "backup")
    assert prefixes(fake) == ["primary", "primary", "backup"]


def test_200_with_error_body_to_a_streaming_request_falls_back(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "error-body-stream")
    bad = Scenario(
        status=200,
        json_body={"type": "error", "error": {"type": "api_error", "message": "hidden failure"}},
        name="ok_with_error",
    )
    fake.script(bad, bad)
    response = post(server, body(stream=True))
    assert_answered_by(response, "backup")
    assert prefixes(fake) == ["primary", "primary", "backup"]


# --------------------------------------------------------------------------- errors of the request


def test_request_error_400_returned_at_once(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "basic")
    fake.script(error(400, "messages.0.content: bad block"))
    response = post(server, body())
    payload = assert_error(response, 400, "invalid_request_error")
    assert "bad block" in payload["error"]["message"]
    assert prefixes(fake) == ["primary"]  # no retry, no fallback


def test_oversized_body_413_reaches_nobody(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "basic")
    huge = body(messages=[{"role": "user", "content": "x" * 1_100_000}])
    response = post(server, huge)
    assert_error(response, 413, "request_too_large")
    assert fake.requests == []


def test_300_tools_reach_the_upstream_intact(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "basic")
    tools = [
        {
            "name": f"tool_{index:03d}",
            "description": f"Tool number {index}",
            "input_schema": {
                "type": "object",
                "properties": {"arg": {"type": "string", "description": "an argument"}},
                "required": ["arg"],
            },
        }
        for index in range(300)
    ]
    response = post(server, body(tools=tools))
    assert_answered_by(response, "primary")
    sent = fake.last_message_request()
    assert sent.path == "/primary/v1/messages"
    assert sent.body["tools"] == tools


# --------------------------------------------------------------------------- load shedding


async def _stream_first_chunk_then_leave(client: httpx.AsyncClient, url: str) -> None:
    async with client.stream("POST", url, json=body(), headers=HEADERS) as response:
        assert response.status_code == 200
        async for _ in response.aiter_raw():
            break  # one chunk of the answer, then hang up


async def _timed_post(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post(url, json=body(), headers=HEADERS)
    await response.aread()
    return response, time.monotonic() - started


async def _concurrently(url: str, count: int) -> list[tuple[httpx.Response, float]]:
    limits = httpx.Limits(max_connections=count + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, limits=limits) as client:
        return await asyncio.gather(*[_timed_post(client, url) for _ in range(count)])


async def _leave_midstream(url: str, count: int) -> None:
    limits = httpx.Limits(max_connections=count + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, limits=limits) as client:
        await asyncio.gather(*[_stream_first_chunk_then_leave(client, url) for _ in range(count)])


def test_client_disconnect_midstream_cancels_upstream_and_frees_slots(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "disconnect")
    url = f"{server.url}/v1/messages"
    fake.default = slow_text(event_delay=0.2)
    # Fill all four slots with streams whose clients hang up after the first chunk.
    asyncio.run(_leave_midstream(url, 4))
    assert fake.wait_for_disconnects(4, timeout=5), "lynkr did not cancel the upstream calls"
    assert fake.completed == 0
    # Had any slot leaked, one of four concurrent requests would now get a 529.
    fake.reset()
    fake.default = slow_text(event_delay=0.03)
    results = asyncio.run(_concurrently(url, 4))
    assert [r.status_code for r, _ in results] == [200] * 4, [r.text for r, _ in results]
    assert prefixes(fake) == ["primary"] * 4
    for response, _ in results:
        assert sse(response.text)[-1][0] == "message_stop"


def test_burst_of_ten_times_capacity_sheds_fast(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "burst")
    fake.default = slow_text(event_delay=0.1)  # ~2.5 s per admitted answer
    results = asyncio.run(_concurrently(f"{server.url}/v1/messages", 40))
    admitted = [(r, t) for r, t in results if r.status_code == 200]
    shed = [(r, t) for r, t in results if r.status_code == 529]
    assert len(admitted) + len(shed) == 40, sorted({r.status_code for r, _ in results})
    assert len(admitted) == 4, [r.status_code for r, _ in results]
    for response, took in shed:
        assert_error(response, 529, "overloaded_error")
        assert int(response.headers["retry-after"]) >= 1
        assert took < 1.0, f"a shed request took {took:.2f} s"
    slowest_shed = max(took for _, took in shed)
    quickest_admitted = min(took for _, took in admitted)
    assert slowest_shed < quickest_admitted / 2, (slowest_shed, quickest_admitted)
    for response, _ in admitted:
        assert sse(response.text)[-1][0] == "message_stop"
    assert len(fake.message_requests()) == 4  # shed requests never reached the upstream


# --------------------------------------------------------------------------- nobody answers


def test_all_providers_failing_529_names_both(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = serve(lynkr_server, fake, "all-fail")
    fake.script(*[error(503)] * 4)
    response = post(server, body())
    message = assert_error(response, 529, "overloaded_error")["error"]["message"]
    assert int(response.headers["retry-after"]) >= 1
    assert "primary" in message and "backup" in message and "'main'" in message, message
    assert prefixes(fake) == ["primary", "primary", "backup", "backup"]
    assert "x-lynkr-provider" not in response.headers


# --------------------------------------------------------------------------- the server log


def test_no_exception_escaped_to_any_server_log() -> None:
    assert _STARTED, "run with the rest of the module"
    for name, server in _STARTED.items():
        log = server.stderr_text(limit=2_000_000)
        for marker in ESCAPED:
            assert marker not in log, f"lynkr {name!r} logged {marker!r}:\n{log[-4000:]}"
