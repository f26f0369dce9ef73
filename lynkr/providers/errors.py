"""Upstream error answers → lynkr's exceptions: the mapping, as a pure function.

Upstream errors are never passed through raw (docs/protocol.md B.4, "Upstream
errors"). The rules, by the upstream's status:

- 401/403: 502 `api_error` saying the *provider* refused lynkr's credential,
  so Claude Code does not tell its user to log in again;
- 402: 402 `billing_error` (the provider account's credit, not the client's);
- 408/504: 504 `timeout_error`;
- 429: 429 `rate_limit_error`, `retry-after` kept;
- 502/503/529: 529 `overloaded_error` (the model is down or busy; Claude Code retries);
- other 5xx: 502 `api_error`;
- 404: 404 `not_found_error` naming provider and model;
- 413: 413 `request_too_large`;
- other 4xx: the same status as `invalid_request_error`, with the upstream's
  message; context-window overflows are rewritten into the two wordings
  Claude Code recovers from (docs/protocol.md A.9, case 41).
"""

from __future__ import annotations

import base64
import functools
import re
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

from lynkr.errors import (
    BillingError,
    ClientError,
    LynkrError,
    NotFound,
    RequestTooLarge,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from lynkr.protocol import rewrite_context_overflow

__all__ = [
    "error_from_upstream",
    "error_in_ok_body",
    "ok_body",
    "provider_secrets",
    "read_error",
    "redact",
    "upstream_message",
]

# Credential-shaped text an upstream might echo back (LiteLLM leaked keys through
# exception strings).
_CREDENTIALS = re.compile(
    r"(sk-(?:ant-)?[A-Za-z0-9_\-]{8,}|dapi[0-9a-fA-F]{16,}|(?i:bearer)\s+[^\s\"',]+"
    r"|(?i:api[-_]?key|x-api-key|token|secret)[\"']?\s*[:=]\s*[\"']?[^\s\"',]{6,})"
)

_MAX_MESSAGE = 2000


async def read_error(
    response: Any, *, provider: str, model: str | None, secrets: Sequence[str]
) -> LynkrError:
    """Read an upstream's error answer (at most 1 MiB) and map it (see `error_from_upstream`)."""
    body = await response.read(limit=1024 * 1024)
    return error_from_upstream(
        response.status, body, response.headers, provider=provider, model=model, secrets=secrets
    )


def error_from_upstream(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    model: str | None,
    secrets: Sequence[str] = (),
) -> LynkrError:
    """The lynkr error for an upstream's non-2xx answer (credentials redacted from its text)."""
    message = redact(upstream_message(body), secrets) or f"HTTP {status} with no error message"
    said = f"provider '{provider}' answered HTTP {status}: {message}"
    kept = {k: headers[k] for k in ("retry-after", "retry-after-ms") if k in headers}
    if status in (401, 403):
        return UpstreamError(
            f"provider '{provider}' refused lynkr's credential (HTTP {status}: {message}). "
            f"Your own API key is not the problem: check providers.{provider}.api_key "
            "in lynkr.yaml and the variable it reads.",
            provider=provider,
        )
    if status == 402:
        return BillingError(
            f"provider '{provider}' refused the request for billing reasons (HTTP 402: "
            f"{message}). Check the credit of the account behind providers.{provider}.api_key."
        )
    if status in (408, 504):
        return UpstreamTimeout(said, provider=provider)
    if status == 429:
        return UpstreamRateLimited(said, provider=provider, headers=kept)
    if status in (502, 503, 529):
        return UpstreamOverloaded(said, provider=provider, headers=kept)
    if status >= 500:
        return UpstreamError(said, provider=provider)
    if status == 404:
        return NotFound(
            f"provider '{provider}' does not know model '{model or '?'}' or its endpoint "
            f"(HTTP 404: {message}). Check providers.{provider}.model and base_url."
        )
    if status == 413:
        return RequestTooLarge(f"provider '{provider}' refused the request as too large: {message}")
    # The whole body, not just its message: llama.cpp puts n_prompt_tokens/n_ctx beside it.
    overflow = rewrite_context_overflow(body.decode("utf-8", "replace")[: _MAX_MESSAGE * 4])
    if overflow is not None:
        return ClientError(overflow)
    return ClientError(message, status_code=status if 400 <= status < 500 else 400, headers=kept)


def provider_secrets(api_key: str | None, headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """What of a provider's config must never be repeated: its key and its header values.

    Header values are treated as secrets whatever their name (an `Authorization`
    or a gateway token can hide under any header); short ones are too common
    to redact usefully.
    """
    values = [api_key, *(headers or {}).values()]
    return tuple(v for v in values if v and len(v) >= 8)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` with the given secrets (and their encodings, see `secret_forms`) and anything
    shaped like a credential replaced by ***."""
    for form in secret_forms(tuple(secrets)):
        text = text.replace(form.decode("latin-1"), "***")
    return _CREDENTIALS.sub("***", text)


def redact_bytes(data: bytes, forms: tuple[bytes, ...]) -> bytes:
    """`data` with every form of a secret replaced by `***`; the same object when none is
    there (the common case: one search, no copy).

    A stream's frames are small: one regex pass over the alternation costs ~0.8 µs
    where a search per form costs ~2.7 µs; over large bodies the substring
    searches are the faster (benchmarks/README.md, "Redaction").
    """
    if not forms:
        return data
    if len(data) < _SMALL:
        return _alternation(forms).sub(b"***", data)
    for form in forms:
        if form in data:
            data = data.replace(form, b"***")
    return data


_SMALL = 4096


@functools.lru_cache(maxsize=64)
def _alternation(forms: tuple[bytes, ...]) -> re.Pattern[bytes]:
    return re.compile(b"|".join(re.escape(form) for form in forms))


@functools.lru_cache(maxsize=64)
def secret_forms(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """Each secret as an upstream or a tool might hand it back: as it is, reversed, in hex,
    URL-encoded, and base64 at each of the three alignments it can fall on.

    An upstream that echoes request headers, or a model told to "print the key
    base64'd", must not get it past an exact-string match. The base64 forms are
    the characters that depend on the secret's bytes only (the first and last
    few depend on what surrounds it), so they match wherever it sat.
    """
    forms: list[bytes] = []
    for secret in secrets:
        if len(secret) < 8:
            continue
        raw = secret.encode()
        forms += [raw, raw[::-1], raw.hex().encode(), raw.hex().upper().encode()]
        forms.append(urllib.parse.quote(secret, safe="").encode())
        for shift, skip in ((0, 0), (1, 2), (2, 3)):
            encoded = base64.b64encode(b"\0" * shift + raw)[skip:-4]
            if len(encoded) >= 12:
                forms += [encoded, base64.urlsafe_b64encode(b"\0" * shift + raw)[skip:-4]]
    # Longest first: a form inside another is replaced as part of the longer one.
    return tuple(sorted(set(forms), key=len, reverse=True))


async def redacted_stream(
    chunks: AsyncIterator[bytes], secrets: Sequence[str]
) -> AsyncIterator[bytes]:
    """An upstream-derived stream with every form of `secrets` replaced.

    Frames go out whole (the relay and the translators emit frame by frame), so
    a secret inside one frame is inside one chunk.
    """
    forms = secret_forms(tuple(secrets))
    async for chunk in chunks:
        yield redact_bytes(chunk, forms) if forms else chunk


def upstream_message(body: bytes) -> str:
    """The human message inside an error body of any common shape, shortened."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text[:_MAX_MESSAGE]
    found = _find_message(parsed)
    return (found if found is not None else text)[:_MAX_MESSAGE]


def _find_message(parsed: Any) -> str | None:
    # Anthropic {"error": {"message"}}, OpenAI the same, Ollama {"error": "..."},
    # FastAPI-style {"detail": "..."}, bare {"message": "..."}.
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for key in ("error", "message", "detail"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return None


def ok_body(body: bytes, *, provider: str, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """A 200 answer's JSON object; raises the upstream's error if the body holds one.

    A body that is not JSON, not an object, or an error in disguise raises, so the
    pool can still fail over (no byte of the answer has reached the client yet).
    """
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            f"provider '{provider}' answered with a body that is not JSON", provider=provider
        ) from exc
    error = error_in_ok_body(answer, provider=provider, secrets=secrets)
    if error is not None:
        raise error
    return answer  # type: ignore[no-any-return]


def error_in_ok_body(
    answer: Any, *, provider: str, secrets: Sequence[str] = ()
) -> LynkrError | None:
    """An error some upstreams put in a 200 answer (`{"type": "error"}`, `{"error": ...}`)."""
    if not isinstance(answer, dict):
        return UpstreamError(
            f"provider '{provider}' answered 200 with JSON that is not an object",
            provider=provider,
        )
    error = answer.get("error")
    if answer.get("type") != "error" and not (error and "choices" not in answer):
        return None
    message = redact((_find_message(answer) or "no message")[:_MAX_MESSAGE], secrets)
    kind = error.get("type") if isinstance(error, dict) else None
    said = f"provider '{provider}' answered 200 with an error: {message}"
    if kind == "overloaded_error":
        return UpstreamOverloaded(said, provider=provider)
    if kind == "rate_limit_error":
        return UpstreamRateLimited(said, provider=provider)
    return UpstreamError(said, provider=provider)
