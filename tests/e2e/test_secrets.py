"""No provider credential (a canary key) ever reaches a log line or a client, whatever happens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fakes.anthropic_upstream import error, text

pytestmark = pytest.mark.e2e

CANARY = "sk-ant-api03-LYNKRCANARY0123456789abcdef"
ENV_CANARY = "dapi0123456789LYNKRCANARYfromenv0123"


def test_canary_keys_never_appear_in_logs_or_answers(
    lynkr_server: Callable[..., Any],
    fake: Any,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LYNKR_TEST_CANARY", ENV_CANARY)
    providers = {
        "fake": {"type": "anthropic", "base_url": fake.url, "api_key": CANARY, "model": "m"},
        "env": {"type": "databricks", "base_url": fake.url, "api_key": "${LYNKR_TEST_CANARY}",
                "endpoint": "e"},
        "dead": {"type": "anthropic", "base_url": f"http://127.0.0.1:{closed_port}",
                 "api_key": CANARY, "model": "m"},
    }  # fmt: skip
    pools = {name: {"providers": [name]} for name in providers}
    server = lynkr_server("canary", providers=providers, pools=pools, default_pool="fake")
    body = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    fake.script(
        text("fine"),
        error(401, f"invalid x-api-key: {CANARY}"),
        error(401, f"Invalid token {ENV_CANARY}"),
        error(500, f"upstream crashed while checking Bearer {CANARY}"),
    )
    answers = []
    with httpx.Client(base_url=server.url, timeout=10, trust_env=False) as client:
        for pool in ("fake", "fake", "env", "fake", "dead"):
            response = client.post(
                "/v1/messages", json=body, headers={"x-lynkr-pool": pool, "x-api-key": "client"}
            )
            answers.append(response)
    assert [r.status_code for r in answers] == [200, 502, 502, 502, 502]
    seen = "".join(r.text + str(r.headers) for r in answers) + server.stderr_text(limit=10**6)
    assert "provider 'fake' refused lynkr's credential" in answers[1].text
    assert CANARY not in seen
    assert ENV_CANARY not in seen
    assert "LYNKRCANARY" not in seen
    # The provider did get its key: redaction is about what lynkr shows, not what it sends.
    assert fake.message_requests()[0].header("x-api-key") == CANARY
