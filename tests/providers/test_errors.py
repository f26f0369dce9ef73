"""Upstream errors map to Anthropic errors that say what to fix (docs/protocol.md cases 40–41)."""

from __future__ import annotations

import orjson
import pytest

from lynkr.errors import LynkrError
from lynkr.providers.errors import error_from_upstream, upstream_message


def anthropic_error(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def mapped(status: int, body: bytes, headers: dict[str, str] | None = None) -> LynkrError:
    return error_from_upstream(status, body, headers or {}, provider="claude", model="m-1")


@pytest.mark.parametrize(
    ("status", "wire_status", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (401, 502, "api_error"),
        (403, 502, "api_error"),
        (404, 404, "not_found_error"),
        (409, 409, "invalid_request_error"),
        (413, 413, "request_too_large"),
        (422, 422, "invalid_request_error"),
        (429, 429, "rate_limit_error"),
        (500, 502, "api_error"),
        (502, 529, "overloaded_error"),
        (402, 402, "billing_error"),
        (408, 504, "timeout_error"),
        (504, 504, "timeout_error"),
        (503, 529, "overloaded_error"),
        (529, 529, "overloaded_error"),
    ],
)
def test_status_mapping(status: int, wire_status: int, kind: str) -> None:
    error = mapped(status, anthropic_error("x", "upstream says no"))
    assert (error.status_code, error.error_type) == (wire_status, kind)


def test_credential_refusal_blames_the_provider_key() -> None:
    error = mapped(401, anthropic_error("authentication_error", "invalid x-api-key"))
    assert "provider 'claude' refused lynkr's credential" in error.message
    assert "providers.claude.api_key" in error.message
    assert "invalid x-api-key" in error.message


def test_retry_after_is_kept() -> None:
    error = mapped(429, anthropic_error("rate_limit_error", "slow down"), {"retry-after": "7"})
    assert error.headers == {"retry-after": "7"}


def test_openai_context_overflow_is_reworded_for_claude_code() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "context_length_exceeded",
                "message": "This model's maximum context length is 128000 tokens. However, you "
                "requested 150000 tokens (120000 in the messages, 30000 in the completion). "
                "Please reduce the length of the messages or completion.",
            }
        }
    )
    error = mapped(400, body)
    assert error.status_code == 400
    assert error.message == (
        "input length and `max_tokens` exceed context limit: 120000 + 30000 > 128000, "
        "decrease input length or `max_tokens` and try again"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "a"}}', "a"),
        (b'{"error": "b"}', "b"),
        (b'{"detail": "c"}', "c"),
        (b"plain text failure", "plain text failure"),
        (b"", ""),
    ],
)
def test_message_extraction(body: bytes, message: str) -> None:
    assert upstream_message(body) == message


def test_no_message_still_says_the_status() -> None:
    assert "HTTP 500 with no error message" in mapped(500, b"").message


def test_llamacpp_overflow_numbers_come_from_beside_the_message() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 40960,
                "n_ctx": 32768,
            }
        }
    )
    assert mapped(400, body).message == "prompt is too long: 40960 tokens > 32768 maximum"


@pytest.mark.parametrize(
    "echoed",
    [
        "invalid x-api-key: sk-ant-api03-CANARYcanary0123456789",
        "Incorrect API key provided: sk-proj-CANARY0123456789abcdef",
        "token dapi0123456789abcdef0123456789abcdef is expired",
        "Authorization: Bearer CANARY-token-value rejected",
        'bad request {"api_key": "CANARY-value-123"}',
        "the key MY-OWN-CANARY-SECRET is wrong",
    ],
)
def test_credentials_an_upstream_echoes_are_redacted(echoed: str) -> None:
    error = error_from_upstream(
        401,
        anthropic_error("authentication_error", echoed),
        {},
        provider="claude",
        model="m",
        secrets=("MY-OWN-CANARY-SECRET",),
    )
    assert "CANARY" not in error.message.upper().replace("***", "")
    assert "***" in error.message


def test_provider_secrets_include_header_values() -> None:
    from lynkr.providers.errors import provider_secrets

    secrets = provider_secrets(
        "sk-key-123456", {"Authorization": "Bearer gw-token-abc", "X-T": "a"}
    )
    assert secrets == ("sk-key-123456", "Bearer gw-token-abc")


def test_urls_lose_userinfo_and_query() -> None:
    from lynkr.providers.http import redact_url

    assert (
        redact_url("https://user:pw@host:8443/v1/messages?key=k") == "https://host:8443/v1/messages"
    )
