"""Every proxied answer says what lynkr itself cost: `x-lynkr-overhead-ms` and `server-timing`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fakes.anthropic_upstream import FakeAnthropic, text

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_overhead_excludes_the_upstream_wait(
    lynkr_server: Callable[..., Any], fake: FakeAnthropic, stream: bool
) -> None:
    server = lynkr_server()
    fake.script(text("slow answer", headers_delay=0.3))
    body: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        body["stream"] = True
    with httpx.Client(timeout=10, trust_env=False) as client:
        response = client.post(f"{server.url}/v1/messages", json=body)
    assert response.status_code == 200
    timing = re.fullmatch(
        r"lynkr;dur=([\d.]+), upstream;dur=([\d.]+)", response.headers["server-timing"]
    )
    assert timing, response.headers["server-timing"]
    lynkr_ms, upstream_ms = float(timing[1]), float(timing[2])
    assert upstream_ms >= 300  # the fake waited 0.3 s before answering
    assert lynkr_ms < upstream_ms  # lynkr's own share is not the upstream's wait
    assert float(response.headers["x-lynkr-overhead-ms"]) == lynkr_ms
