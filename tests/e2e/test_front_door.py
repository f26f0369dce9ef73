"""The HTTP surface of a real `lynkr serve`, attacked as a web page or a greedy client would.

Each test is one observed attack: a page POSTing `text/plain` cross-site, DNS
rebinding reading the sessions API, a key reading another key's sessions or
cached answers, half-open connections, giant request heads, stalled bodies
holding every shedding slot. All on loopback, bounded in count and time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

import httpx
import orjson
import pytest
from conftest import LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, text

pytestmark = pytest.mark.e2e

BODY = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
ALICE = "alice-key-0123456789"
BOB = "bob-key-9876543210"
LIMITS = {
    "max_connections": 40,
    "max_header_bytes": 8192,
    "header_timeout_seconds": 1,
    "body_timeout_seconds": 1,
}


def _front_door(lynkr_server: Callable[..., LynkrServer]) -> LynkrServer:
    """A lynkr with two named keys, a cache, two shedding slots and tight head limits."""
    keys = [{"name": "alice", "key": ALICE}, {"name": "bob", "key": BOB}]
    middleware = [
        {"use": "shedding", "max_concurrent": 2, "max_queue": 0},
        {"use": "auth", "keys": keys},
        {"use": "validation"},
        {"use": "cache"},
        {"use": "routing"},
    ]
    return lynkr_server(
        "front-door",
        middleware=middleware,
        server={"limits": LIMITS},
    )


@pytest.fixture
def door(fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]) -> LynkrServer:
    return _front_door(lynkr_server)


def _client(server: LynkrServer, key: str = ALICE) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=10, trust_env=False, headers={"x-api-key": key}
    )


def test_a_web_page_cannot_post_a_simple_request(door: LynkrServer, fake: FakeAnthropic) -> None:
    import orjson

    with _client(door) as client:
        plain = client.post(
            "/v1/messages", content=orjson.dumps(BODY), headers={"content-type": "text/plain"}
        )
        untyped = client.post("/v1/messages", content=orjson.dumps(BODY))
        from_page = client.post(
            "/v1/messages", json=BODY, headers={"origin": "https://evil.example"}
        )
    assert plain.status_code == 400, plain.text
    assert "content-type: application/json" in plain.json()["error"]["message"]
    assert untyped.status_code == 400
    assert from_page.status_code == 403
    assert from_page.json()["error"]["type"] == "permission_error"
    assert "server.allowed_origins" in from_page.json()["error"]["message"]
    assert fake.message_requests() == []  # none of them reached the model


def test_dns_rebinding_cannot_read_sessions(door: LynkrServer, fake: FakeAnthropic) -> None:
    fake.script(text("hello"))
    with _client(door) as client:
        assert client.post("/v1/messages", json=BODY).status_code == 200
        rebound = client.get("/v1/lynkr/sessions", headers={"host": "rebind.evil.example"})
        own = client.get("/v1/lynkr/sessions", headers={"host": f"localhost:{door.port}"})
    assert rebound.status_code == 403, rebound.text
    assert "server.allowed_hosts" in rebound.json()["error"]["message"]
    assert "data" not in rebound.json()
    assert own.status_code == 200


def _sessions(server: LynkrServer, key: str, want: str) -> list[dict[str, Any]]:
    """The caller's sessions once `want` is recorded (recording ends after the answer)."""
    deadline = time.monotonic() + 10
    with _client(server, key) as client:
        while True:
            found = client.get("/v1/lynkr/sessions").json()["data"]
            if want in [s["id"] for s in found] or time.monotonic() > deadline:
                return list(found)
            time.sleep(0.05)


def test_a_key_sees_only_its_own_sessions(door: LynkrServer, fake: FakeAnthropic) -> None:
    fake.script(text("for alice"), text("for bob"))
    alice_body = {**BODY, "messages": [{"role": "user", "content": "alice's secret plan"}]}
    bob_body = {**BODY, "messages": [{"role": "user", "content": "bob's question"}]}
    headers = {"x-claude-code-session-id": "shared-session-id"}
    with _client(door, ALICE) as alice, _client(door, BOB) as bob:
        assert alice.post("/v1/messages", json=alice_body, headers=headers).status_code == 200
        assert bob.post("/v1/messages", json=bob_body, headers=headers).status_code == 200
    alice_sessions = _sessions(door, ALICE, "shared-session-id")
    bob_sessions = _sessions(door, BOB, "shared-session-id")
    assert "shared-session-id" in [s["id"] for s in alice_sessions]
    # Bob's list holds his sessions only: Alice's other conversations are not in it.
    assert [s["id"] for s in bob_sessions] == ["shared-session-id"]
    with _client(door, BOB) as bob:
        shown = bob.get("/v1/lynkr/sessions/shared-session-id", params={"content": "full"})
    assert shown.status_code == 200
    assert "bob's question" in shown.text
    assert "alice's secret plan" not in shown.text  # one id, two callers, two sessions
    assert shown.json()["turn_count"] == 1


def test_the_cache_never_answers_one_key_with_another_s_reply(
    door: LynkrServer, fake: FakeAnthropic
) -> None:
    fake.script(text("alice's cached answer"), text("bob's own answer"))
    body = {**BODY, "messages": [{"role": "user", "content": "the same question"}]}
    with _client(door, ALICE) as alice, _client(door, BOB) as bob:
        first = alice.post("/v1/messages", json=body)
        again = alice.post("/v1/messages", json=body)
        other = bob.post("/v1/messages", json=body)
    assert first.json()["content"][0]["text"] == "alice's cached answer"
    assert again.headers["x-lynkr-cache"] == "hit"
    assert other.headers["x-lynkr-cache"] != "hit"
    assert other.json()["content"][0]["text"] == "bob's own answer"
    assert len(fake.message_requests()) == 2


@contextmanager
def _sockets(server: LynkrServer, count: int) -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        yield opened
    finally:
        for sock in opened:
            sock.close()


def _answer(sock: socket.socket, limit: float = 5.0) -> bytes:
    """What the server sends until it closes the connection (or `limit` seconds pass)."""
    sock.settimeout(limit)
    received = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
    return received


def test_half_open_connections_are_closed_and_cannot_crowd_out_requests(
    door: LynkrServer, fake: FakeAnthropic
) -> None:
    fake.default = text("still served")
    with _sockets(door, 60) as idle:  # more than max_connections, none sends a byte
        refused = _answer(idle[-1], limit=3)
        assert refused.startswith(b"HTTP/1.1 503"), refused
        # After header_timeout_seconds every silent one is answered 408 and closed …
        timed_out = _answer(idle[0], limit=5)
        assert timed_out.startswith(b"HTTP/1.1 408"), timed_out
        assert b"server.limits" in timed_out
        time.sleep(0.3)
        # … and the server answers real requests again.
        with _client(door) as client:
            assert client.post("/v1/messages", json=BODY).status_code == 200


def test_a_slow_head_is_cut_off(door: LynkrServer) -> None:
    with closing(socket.create_connection(("127.0.0.1", door.port), timeout=5)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-slow: ")
        started = time.monotonic()
        for _ in range(8):  # a byte every 0.25 s: each arrives, the head never ends
            try:
                sock.sendall(b"a")
            except OSError:
                break
            time.sleep(0.25)
        answer = _answer(sock, limit=3)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < 4


def test_a_giant_head_is_refused_without_being_kept(door: LynkrServer) -> None:
    with closing(socket.create_connection(("127.0.0.1", door.port), timeout=5)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ")
        sent = 0
        try:
            while sent < 4 * 1024 * 1024:  # 4 MiB of one header, if the server keeps reading
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # the server closed the connection: what we expect
        answer = _answer(sock, limit=3)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert sent < 4 * 1024 * 1024


def test_the_rest_of_a_body_answered_early_is_not_a_next_request_head(
    door: LynkrServer, fake: FakeAnthropic
) -> None:
    """A body refused on its content-length (413) keeps arriving after the answer; those
    bytes are still that body, drained, not the head of a next request (it was answered
    431 and the connection cut — a client still uploading could lose its 413)."""
    fake.default = text("the next request on the same connection")
    size = 33 * 1024 * 1024  # over validation's 32 MiB default
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {ALICE}\r\n"
        f"content-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    ).encode()
    with closing(socket.create_connection(("127.0.0.1", door.port), timeout=10)) as sock:
        sock.sendall(head)
        sock.settimeout(5)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 413"), first[:200]
        chunk = b" " * 65536
        for _ in range(size // len(chunk)):  # the rest of the body, after the answer
            sock.sendall(chunk)
        sock.sendall(b" " * (size % len(chunk)))
        body = orjson.dumps({**BODY, "messages": [{"role": "user", "content": "after a 413"}]})
        sock.sendall(
            f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {ALICE}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        second = b""
        deadline = time.monotonic() + 10
        while b"the next request" not in second and time.monotonic() < deadline:
            second += sock.recv(65536)
    assert b"HTTP/1.1 431" not in second, second[:300]
    assert b"HTTP/1.1 200" in second and b"the next request" in second, second[:300]


def test_stalled_bodies_give_their_shedding_slots_back(
    door: LynkrServer, fake: FakeAnthropic
) -> None:
    fake.default = text("served after the stall")
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {ALICE}\r\n"
        "content-type: application/json\r\ncontent-length: 5000\r\n\r\n{"
    ).encode()
    with _sockets(door, 4) as stalled:  # twice the two slots, each sends a head and 1 byte
        for sock in stalled:
            sock.sendall(head)
        answers: list[bytes] = []
        threads = [
            threading.Thread(target=lambda s=s: answers.append(_answer(s, 5))) for s in stalled
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=8)
    statuses = sorted(answer[:12] for answer in answers)
    # Two held the slots and got 408 at the deadline; the others were shed at once (529).
    assert statuses.count(b"HTTP/1.1 408") == 2, answers
    assert all(b'"timeout_error"' in a for a in answers if a.startswith(b"HTTP/1.1 408"))
    with _client(door) as client:  # the slots are free again
        assert client.post("/v1/messages", json=BODY).status_code == 200
