"""End to end: the cache in a real `lynkr serve` ([validation, cache, routing]) before the fake.

A repeated request, streaming or not, is answered by lynkr (`x-lynkr-cache: hit`) while the
fake upstream sees it once, and the `anthropic` SDK's parsed message is the same apart from
id and usage. The lynkr-side time of a hit is read from lynkr's access log and printed
(`pytest -s`). The real Claude Code CLI, run twice with the same prompt, gets the same
answer while the fake sees one main-turn request (CC varies its billing header and
metadata between runs; neither is in the key).

The server lives for the session, so every test asks something of its own (a fresh nonce).
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from conftest import LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, Recorded, text, thinking, tool_use

from e2e.test_claude_code import claude_bin, describe, run_claude

pytestmark = pytest.mark.e2e

__all__ = ["claude_bin"]  # the session fixture, shared with test_claude_code.py

CLIENT_MODEL = "claude-opus-4-8"  # not in the SDK's deprecated list (that warns)
TIMEOUT = 15.0
MIDDLEWARE = [{"use": "validation"}, {"use": "cache"}, {"use": "routing"}]
SAME = {"id", "usage"}


@pytest.fixture
def cached(fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]) -> LynkrServer:
    return lynkr_server("cache", middleware=MIDDLEWARE)


@pytest.fixture
def client(cached: LynkrServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=cached.url, api_key="client-key", max_retries=0, timeout=TIMEOUT
    ) as sdk:
        yield sdk


def ask(nonce: str) -> dict[str, Any]:
    """Request fields of a question no other test asks."""
    return {
        "model": CLIENT_MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": f"question {nonce}"}],
    }


def nonce() -> str:
    return secrets.token_hex(6)


def stream_twice(client: anthropic.Anthropic, fields: dict[str, Any]) -> list[Any]:
    """(headers, final message) of the same streaming request, twice."""
    out = []
    for _ in range(2):
        with client.messages.stream(**fields) as stream:
            out.append((stream.response.headers, stream.get_final_message()))
    return out


def create(client: anthropic.Anthropic, fields: dict[str, Any]) -> tuple[Any, Any]:
    raw = client.messages.with_raw_response.create(**fields)
    return raw.headers, raw.parse()


@pytest.mark.parametrize(
    "answer", [text("cached text"), tool_use("echo hi"), thinking()], ids=lambda s: s.name
)
def test_a_repeated_stream_is_a_hit(
    fake: FakeAnthropic, client: anthropic.Anthropic, answer: Any
) -> None:
    fake.default = answer
    (miss_headers, live), (hit_headers, replayed) = stream_twice(client, ask(nonce()))
    assert (miss_headers["x-lynkr-cache"], hit_headers["x-lynkr-cache"]) == ("miss", "hit")
    assert len(fake.message_requests()) == 1
    assert replayed.model_dump(exclude=SAME) == live.model_dump(exclude=SAME)
    assert replayed.id != live.id
    assert replayed.usage.input_tokens == 0
    assert replayed.usage.cache_read_input_tokens == live.usage.input_tokens


def test_a_repeated_json_request_is_a_hit(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.default = tool_use("ls", tool_id="toolu_cache_json")
    fields = ask(nonce())
    (miss_headers, live), (hit_headers, replayed) = create(client, fields), create(client, fields)
    assert (miss_headers["x-lynkr-cache"], hit_headers["x-lynkr-cache"]) == ("miss", "hit")
    assert len(fake.message_requests()) == 1
    assert replayed.model_dump(exclude=SAME) == live.model_dump(exclude=SAME)


def test_stream_and_json_share_one_entry(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fields = ask(nonce())
    with client.messages.stream(**fields) as stream:
        live = stream.get_final_message()
    headers, replayed = create(client, fields)
    assert headers["x-lynkr-cache"] == "hit"
    assert replayed.model_dump(exclude=SAME) == live.model_dump(exclude=SAME)
    assert len(fake.message_requests()) == 1


def test_no_store_bypasses_and_count_tokens_is_not_cached(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fields = ask(nonce())
    for _ in range(2):
        headers, _ = create(client, {**fields, "extra_headers": {"cache-control": "no-store"}})
        assert headers["x-lynkr-cache"] == "bypass"
    assert len(fake.message_requests()) == 2
    assert create(client, fields)[0]["x-lynkr-cache"] == "miss"
    count_fields = {k: v for k, v in fields.items() if k != "max_tokens"}
    for _ in range(2):
        counted = client.messages.with_raw_response.count_tokens(**count_fields)
        assert counted.headers["x-lynkr-cache"] == "bypass"


def test_hit_time_on_the_lynkr_side(
    fake: FakeAnthropic, cached: LynkrServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measured, not asserted: lynkr's own time for a hit (access log) and the round trip."""
    fields = {**ask(nonce()), "stream": True}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    ids: list[str] = []
    round_trips: list[float] = []
    with httpx.Client(base_url=cached.url, timeout=TIMEOUT, trust_env=False) as http:
        assert http.post("/v1/messages", json=fields, headers=headers).status_code == 200
        for _ in range(50):
            started = time.perf_counter()
            response = http.post("/v1/messages", json=fields, headers=headers)
            round_trips.append(time.perf_counter() - started)
            assert response.headers["x-lynkr-cache"] == "hit"
            ids.append(response.headers["request-id"])
    assert len(fake.message_requests()) == 1
    lynkr_ms = access_log_ms(cached, set(ids))
    with capsys.disabled():
        print(
            f"\ncache hit, lynkr side (access log, 0.1 ms resolution): median "
            f"{statistics.median(lynkr_ms):.1f} ms, max {max(lynkr_ms):.1f} ms over "
            f"{len(lynkr_ms)} hits; client round trip median "
            f"{statistics.median(round_trips) * 1000:.2f} ms"
        )


def access_log_ms(server: LynkrServer, request_ids: set[str]) -> list[float]:
    """The `ms` of the access-log lines of `request_ids` (waiting briefly for the log)."""
    deadline = time.monotonic() + 5
    found: list[float] = []
    while time.monotonic() < deadline:
        found = []
        for line in server.stderr_text(limit=10**7).splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("request_id") in request_ids and "ms" in record:
                found.append(float(record["ms"]))
        if len(found) == len(request_ids):
            break
        time.sleep(0.1)
    assert found, server.stderr_text()
    return found


def main_turns(fake: FakeAnthropic) -> list[Recorded]:
    """Claude Code's main-loop requests (they carry its client tools; side requests do not)."""
    return [record for record in fake.message_requests() if record.body.get("tools")]


def test_claude_code_repeat_is_served_from_the_cache(
    claude_bin: Path, fake: FakeAnthropic, cached: LynkrServer, tmp_path: Path
) -> None:
    fake.default = text(f"LYNKR_CACHED_HELLO {nonce()}")
    first, result_one = run_claude(claude_bin, cached.url, tmp_path, "say hi")
    assert first.returncode == 0, describe(first, fake)
    assert len(main_turns(fake)) == 1, describe(first, fake)
    fake.default = text("NOT FROM THE CACHE")
    second, result_two = run_claude(claude_bin, cached.url, tmp_path, "say hi")
    assert second.returncode == 0, describe(second, fake)
    assert result_two.get("is_error") is False, describe(second, fake)
    assert result_two["result"] == result_one["result"], describe(second, fake)
    assert "LYNKR_CACHED_HELLO" in result_two["result"]
    assert len(main_turns(fake)) == 1, describe(second, fake)
