"""A lynkr.yaml shaped like README.md's three-pool example behaves as documented.

Small requests go to the local pool, mid-sized tool lists to the moderate one, Claude
Code's 24 tools to the complex one; a dead provider there is skipped within one request
and its breaker is open for the next. Real `lynkr serve`, real `anthropic` SDK (raw httpx
where headers are the point), one fake upstream playing four providers under the path
prefixes `/local`, `/mid`, `/big` and `/spare`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from conftest import REPO, LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, error, text

pytestmark = pytest.mark.e2e

MODEL = "claude-opus-4-8"
TIMEOUT = 10.0
# The recorded Claude Code request (docs/protocol.md A.7.4).
SAMPLE = json.loads(
    (REPO / "tests" / "middleware" / "data" / "claude-code-request-sample.json").read_text(
        encoding="utf-8"
    )
)
HEADERS = {"x-api-key": "client-key", "anthropic-version": "2023-06-01"}


def provider(fake_url: str, name: str) -> dict[str, Any]:
    return {
        "type": "anthropic",
        "base_url": f"{fake_url}/{name}",
        "api_key": f"{name}-key",
        "model": f"{name}-model",
    }


def three_pools(fake_url: str) -> dict[str, Any]:
    """The options of `lynkr_config` for a lynkr.yaml like README.md's three-pool example."""
    return {
        "providers": {name: provider(fake_url, name) for name in ("local", "mid", "big", "spare")},
        "pools": {
            "simple": {"providers": ["local"]},
            "moderate": {"providers": ["mid"]},
            "complex": {"providers": ["big"], "fallback": ["spare"]},
        },
        "default_pool": "moderate",
        "middleware": [
            {"use": "validation"},
            {"use": "routing"},
            {"use": "failover", "consecutive_failures": 2, "backoff_base_seconds": 0.01},
        ],
        "extra": {
            "routing": {
                "default_pool": "moderate",
                "tool_thresholds": {"simple": 2, "moderate": 14},
            }
        },
    }


def claude_code_body() -> dict[str, Any]:
    """The recorded Claude Code request with its 24 tools restored (each a copy of Bash)."""
    body: dict[str, Any] = copy.deepcopy(SAMPLE["body"])
    bash = body.pop("_tool_example_Bash")
    names = body["tools"][0].split(": ", 1)[1].rstrip(">").split(", ")
    body["tools"] = [{**copy.deepcopy(bash), "name": name} for name in names]
    return body


def tools(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"tool_{index}",
            "description": f"Tool {index}",
            "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
        }
        for index in range(count)
    ]


def prefixes(fake: FakeAnthropic) -> list[str]:
    return [record.path.split("/")[1] for record in fake.message_requests()]


@pytest.fixture
def server(fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]) -> LynkrServer:
    # One lynkr for the module: the dead-provider test runs last and owns `big`'s breaker.
    return lynkr_server("three-pools", **three_pools(fake.url))


@pytest.fixture
def client(server: LynkrServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.url, api_key="client-key", max_retries=0, timeout=TIMEOUT
    ) as sdk:
        yield sdk


def test_claude_code_sample_has_24_tools() -> None:
    assert len(claude_code_body()["tools"]) == 24


@pytest.mark.parametrize(
    ("count", "pool", "path", "reason"),
    [
        (0, "simple", "local", "tools=0<=simple=2"),
        (1, "simple", "local", "tools=1<=simple=2"),
        (2, "simple", "local", "tools=2<=simple=2"),
        (3, "moderate", "mid", "tools=3<=moderate=14"),
        (8, "moderate", "mid", "tools=8<=moderate=14"),
        (14, "moderate", "mid", "tools=14<=moderate=14"),
        (15, "complex", "big", "tools=15>moderate=14"),
    ],
)
def test_tool_count_picks_the_pool(
    fake: FakeAnthropic,
    client: anthropic.Anthropic,
    count: int,
    pool: str,
    path: str,
    reason: str,
) -> None:
    fake.script(text(f"answered for {count} tools"))
    extra: dict[str, Any] = {"tools": tools(count)} if count else {}
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}], **extra
    )
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == f"answered for {count} tools"
    assert message.model == MODEL
    assert raw.headers["x-lynkr-provider"] == path
    route = raw.headers["x-lynkr-route"]
    assert route == f"pool={pool}; rule=tool_thresholds; reason={reason}", route
    assert prefixes(fake) == [path]
    sent = fake.last_message_request()
    assert sent.body["model"] == f"{path}-model"
    assert len(sent.body.get("tools", [])) == count


def test_claude_codes_24_tools_go_to_the_complex_pool(
    fake: FakeAnthropic, server: LynkrServer, client: anthropic.Anthropic
) -> None:
    # The real recorded request, streamed over raw HTTP with Claude Code's own headers.
    recorded = {
        k: v for k, v in SAMPLE["headers"].items() if k not in {"x-api-key", "accept-encoding"}
    }
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as http:
        response = http.post(
            f"{server.url}/v1/messages",
            json=claude_code_body(),
            headers={**recorded, **HEADERS},
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-lynkr-provider"] == "big"
    assert response.headers["x-lynkr-route"] == (
        "pool=complex; rule=tool_thresholds; reason=tools=24>moderate=14"
    )
    assert "event: message_stop" in response.text
    sent = fake.last_message_request()
    assert sent.path == "/big/v1/messages"
    assert [tool["name"] for tool in sent.body["tools"]] == [
        tool["name"] for tool in claude_code_body()["tools"]
    ]

    # And through the SDK, streaming, as Claude Code does.
    fake.reset()
    body = claude_code_body()
    with client.messages.stream(
        model=MODEL, max_tokens=256, messages=body["messages"], tools=body["tools"]
    ) as stream:
        final = stream.get_final_message()
        assert stream.response.headers["x-lynkr-provider"] == "big"
    assert final.content[0].type == "text" and final.stop_reason == "end_turn"
    assert prefixes(fake) == ["big"]


def test_route_explain_cli(server: LynkrServer, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(claude_code_body()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    command = [sys.executable, "-m", "lynkr", "route", "--config", str(server.config_path)]
    done = subprocess.run(
        [*command, "--explain", str(request)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "decision: pool=complex rule=tool_thresholds" in lines, done.stdout
    assert "pool complex: providers big; fallback: spare" in lines, done.stdout
    threshold = [line for line in lines if line.strip().startswith("tool_thresholds")]
    assert threshold and "match" in threshold[0] and "tools=24>moderate=14" in threshold[0]


def test_dead_provider_skipped_within_one_request_then_breaker_open(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    body = claude_code_body()
    # `big` is dead: its first try and its retry get 503; the fallback answers.
    fake.script(error(503), error(503), text("spare speaking"))
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=body["messages"], tools=body["tools"]
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "spare speaking"
    assert raw.headers["x-lynkr-provider"] == "spare"
    assert raw.headers["x-lynkr-route"].startswith("pool=complex; rule=tool_thresholds")
    assert prefixes(fake) == ["big", "big", "spare"]

    # Two failures in a row opened big's breaker: the next request never touches /big.
    fake.reset()
    fake.script(text("spare again"))
    with client.messages.stream(
        model=MODEL, max_tokens=256, messages=body["messages"], tools=body["tools"]
    ) as stream:
        final = stream.get_final_message()
        assert stream.response.headers["x-lynkr-provider"] == "spare"
    assert final.content[0].type == "text" and final.content[0].text == "spare again"
    assert prefixes(fake) == ["spare"]

    # The other pools are untouched by big's breaker.
    fake.reset()
    small = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert small.headers["x-lynkr-provider"] == "local"
    assert prefixes(fake) == ["local"]
