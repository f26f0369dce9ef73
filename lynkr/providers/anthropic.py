"""The adapter for Anthropic-format upstreams: Anthropic, Azure AI Foundry, Databricks (Claude).

The request is the client's own, lightly rewritten (docs/protocol.md B.9): the
provider's model, its credential instead of the client's, the betas it
allows, no billing-header block, no empty text blocks. When none of that
changes anything, the client's bytes go upstream untouched. The answer is
relayed as it arrives; only `message_start.message.model` is rewritten back to
the name the client asked for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import orjson

from lynkr.errors import UpstreamError
from lynkr.protocol import (
    AnthropicStreamRelay,
    UpstreamRewrite,
    filter_betas,
    prepare_request,
    rewrite_model_in_message,
)
from lynkr.providers.base import MessagesRequest, ProviderResponse, ProviderSettings
from lynkr.providers.errors import ok_body, provider_secrets, read_error
from lynkr.providers.http import Timeouts, UpstreamClient, UpstreamResponse, forwarded_headers
from lynkr.providers.whole import single_chunk, whole_message

__all__ = ["AnthropicProvider"]

Flavour = Literal["anthropic", "azure-anthropic", "databricks"]

_DEFAULT_BASE = {"anthropic": "https://api.anthropic.com"}
# Response headers worth passing back to the client (allowlist, never a denylist).
_FORWARDED = ("request-id", "retry-after")
_FORWARDED_PREFIX = ("anthropic-ratelimit-",)


class AnthropicProvider:
    """Calls one Anthropic-format upstream through a shared connection pool."""

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> AnthropicProvider:
        """The adapter for an Anthropic-format provider as lynkr.yaml configures it."""
        betas = settings.options.get("betas", {})
        return cls(
            **settings.common(),
            flavour=cast(Flavour, settings.type),
            betas_allow=betas.get("allow"),
            betas_drop=betas.get("drop", ()),
            **settings.chosen(
                "anthropic_version",
                "count_tokens",
                "strip_billing_header",
                "mid_conversation_system",
                "auth_header",
            ),
        )

    def __init__(
        self,
        *,
        name: str,
        flavour: Flavour = "anthropic",
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeouts: Timeouts | None = None,
        headers: Mapping[str, str] | None = None,
        betas_allow: Sequence[str] | None = None,
        betas_drop: Sequence[str] = (),
        anthropic_version: str = "2023-06-01",
        count_tokens: Literal["upstream", "local"] = "upstream",
        strip_billing_header: bool = True,
        mid_conversation_system: Literal["auto", "keep", "convert"] = "auto",
        auth_header: Literal["x-api-key", "api-key", "bearer"] | None = None,
    ) -> None:
        base = base_url or _DEFAULT_BASE.get(flavour)
        if not base:
            raise ValueError(f"provider '{name}' of type {flavour} needs a base_url")
        self.name = name
        self.model = model
        self.messages_url = messages_url(flavour, base)
        self.count_url = self.messages_url + "/count_tokens"
        self.count_mode = count_tokens
        self.betas_allow = tuple(betas_allow) if betas_allow is not None else None
        self.betas_drop = tuple(betas_drop)
        self.anthropic_version = anthropic_version
        self.strip_billing_header = strip_billing_header
        self.mid_conversation_system = mid_conversation_system
        self.fixed_headers = {"content-type": "application/json", **dict(headers or {})}
        if api_key:
            self.fixed_headers.update(auth_headers(flavour, api_key, auth_header))
        self.secrets = provider_secrets(api_key, headers)
        self.client = UpstreamClient(name=name, timeouts=timeouts or Timeouts())

    async def open(self) -> None:
        await self.client.open()

    async def aclose(self) -> None:
        await self.client.aclose()

    @asynccontextmanager
    async def messages(self, request: MessagesRequest) -> AsyncIterator[ProviderResponse]:
        client_model = request.body.get("model")
        sent_headers, content = self._prepare(request)
        async with self.client.stream(
            "POST", self.messages_url, headers=sent_headers, content=content
        ) as response:
            if response.status >= 300:
                raise await self._error(response)
            rename = client_model if isinstance(client_model, str) and self.model else None
            kept = forwarded_headers(response, _FORWARDED, _FORWARDED_PREFIX)
            if request.stream and _is_event_stream(response):
                yield ProviderResponse(True, _relay(response, rename, self.name), kept)
                return
            # Read whole before answering, so a malformed answer can still fail over.
            body, message = await self._whole(response, rename)
            if request.stream:
                # Some servers answer a stream request with one JSON message: replay it.
                yield whole_message(message, stream=True, headers=kept)
            else:
                yield ProviderResponse(False, single_chunk(body), kept)

    async def count_tokens(self, request: MessagesRequest) -> int | None:
        if self.count_mode == "local":
            return None
        headers, content = self._prepare(request)
        async with self.client.stream(
            "POST", self.count_url, headers=headers, content=content
        ) as response:
            if response.status in (404, 405, 501):
                return None  # No counting endpoint here: the caller estimates locally.
            if response.status >= 300:
                raise await self._error(response)
            answer = orjson.loads(await response.read())
        count = answer.get("input_tokens") if isinstance(answer, dict) else None
        if not isinstance(count, int):
            raise UpstreamError(
                f"provider '{self.name}' answered count_tokens without an integer input_tokens",
                provider=self.name,
            )
        return count

    def _prepare(self, request: MessagesRequest) -> tuple[dict[str, str], bytes]:
        betas = filter_betas(request.betas, allow=self.betas_allow, drop=self.betas_drop)
        rewrite = UpstreamRewrite(
            model=self.model,
            betas=tuple(betas),
            strip_billing_header=self.strip_billing_header,
            mid_conversation_system=self.mid_conversation_system,
        )
        changed = prepare_request(request.body, rewrite)
        content = orjson.dumps(request.body) if changed or request.raw is None else request.raw
        headers = dict(self.fixed_headers)
        headers["anthropic-version"] = request.anthropic_version or self.anthropic_version
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return headers, content

    async def _whole(
        self, response: UpstreamResponse, model: str | None
    ) -> tuple[bytes, dict[str, Any]]:
        """A non-streaming answer checked to be a message, with the model renamed back:
        its bytes (the upstream's own when nothing was renamed) and its parsed form."""
        body = await response.read()
        message = ok_body(body, provider=self.name, secrets=self.secrets)
        if model is None:
            return body, message
        rewrite_model_in_message(message, model)
        return orjson.dumps(message), message

    async def _error(self, response: UpstreamResponse) -> Exception:
        return await read_error(
            response, provider=self.name, model=self.model, secrets=self.secrets
        )


def messages_url(flavour: Flavour, base_url: str) -> str:
    """Where an Anthropic-format upstream takes /v1/messages (docs/protocol.md B.9)."""
    base = base_url.rstrip("/")
    if flavour == "databricks" and not base.endswith("/serving-endpoints/anthropic"):
        if not base.endswith("/serving-endpoints"):
            base += "/serving-endpoints"
        base += "/anthropic"
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return base + "/messages"
    return base + "/v1/messages"


def auth_headers(
    flavour: Flavour, api_key: str, auth_header: Literal["x-api-key", "api-key", "bearer"] | None
) -> dict[str, str]:
    """The provider's credential header: Databricks takes a Bearer token, the others x-api-key."""
    kind = auth_header or ("bearer" if flavour == "databricks" else "x-api-key")
    if kind == "bearer":
        return {"authorization": f"Bearer {api_key}"}
    return {kind: api_key}


async def _relay(
    response: UpstreamResponse, model: str | None, provider: str
) -> AsyncIterator[bytes]:
    """The upstream SSE, chunk by chunk as it arrives; an unfinished stream raises at the end."""
    relay = AnthropicStreamRelay(model)
    async for chunk in response.iter_chunks():
        out = relay.feed(chunk)
        if out:
            yield out
    rest = relay.finish()
    if rest:
        yield rest
    if not relay.completed and not relay.errored:
        raise UpstreamError(
            f"provider '{provider}' closed the stream before message_stop; "
            "the answer is incomplete",
            provider=provider,
        )


def _is_event_stream(response: UpstreamResponse) -> bool:
    """Whether a 200 answer to a streaming request is a stream (anything but JSON counts)."""
    return not response.headers.get("content-type", "").startswith("application/json")
