"""A hostile upstream that echoes lynkr's request headers back, through a real `lynkr serve`.

For each way lynkr sends a credential (`x-api-key`, `api-key`, `Authorization:
Bearer`, a custom `headers:` entry), the upstream puts the headers it received
into a 200 error body, a 500 error, a mid-stream `event: error` and the
answer's text — as they are, base64'd and reversed. No form of any key may
reach the client's bytes or lynkr's log.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, echoing

from lynkr.providers.errors import secret_forms

pytestmark = pytest.mark.e2e

KEYS = {
    "xkey": "sk-ant-api03-ECHOxkey0123456789abcdef",
    "azure": "az-ECHOapikey-0123456789abcdef",
    "bearer": "dapiECHObearer0123456789abcdef01",
    "custom": "gw-ECHOcustom-0123456789abcdef",
}
TRANSFORMS: dict[str, Callable[[str], str]] = {
    "plain": lambda s: s,
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "reversed": lambda s: s[::-1],
}


def _providers(url: str) -> dict[str, dict[str, Any]]:
    base = {"type": "anthropic", "base_url": url, "model": "m"}
    return {
        "xkey": {**base, "api_key": KEYS["xkey"]},
        "azure": {
            **base,
            "type": "azure-anthropic",
            "base_url": f"{url}/anthropic",
            "api_key": KEYS["azure"],
            "auth_header": "api-key",
        },
        "bearer": {
            **base,
            "type": "azure-anthropic",
            "base_url": f"{url}/anthropic",
            "api_key": KEYS["bearer"],
            "auth_header": "bearer",
        },
        "custom": {**base, "api_key": "unused-key", "headers": {"x-gateway": KEYS["custom"]}},
    }


def test_no_form_of_a_key_reaches_the_client_or_the_log(
    lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic
) -> None:
    providers = _providers(fake.url)
    pools = {name: {"providers": [name]} for name in providers}
    server = lynkr_server("echo", providers=providers, pools=pools, default_pool="xkey")
    seen: list[str] = []
    with httpx.Client(base_url=server.url, timeout=20, trust_env=False) as client:
        for pool in providers:
            for where in ("ok_error", "status_error", "stream_error", "text"):
                for name, transform in TRANSFORMS.items():
                    fake.script(echoing(where, transform))
                    body = {
                        "model": "claude-x",
                        "max_tokens": 10,
                        "stream": where in ("stream_error", "text") and name != "plain",
                        "messages": [{"role": "user", "content": "hi"}],
                    }
                    response = client.post(
                        "/v1/messages", json=body, headers={"x-lynkr-pool": pool}
                    )
                    seen.append(f"{pool} {where} {name} {response.status_code} {response.text}")
    # The upstream really did echo them (the test would prove nothing otherwise).
    echoed = [r.header("x-api-key") or r.header("api-key") or r.header("authorization") for r in
              fake.message_requests()]  # fmt: skip
    assert any(KEYS["xkey"] in (value or "") for value in echoed)
    everything = "\n".join(seen) + server.stderr_text(limit=10**7)
    forms = secret_forms(tuple(KEYS.values()))
    leaked = [form for form in forms if form.decode() in everything]
    assert leaked == [], (leaked[:3], everything[:3000])
    assert "***" in everything  # the credentials were there, replaced
