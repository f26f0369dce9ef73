"""The adapter for OpenAI Chat Completions upstreams, one class for every such dialect.

Which dialect — OpenAI or any compatible server, OpenRouter, Azure OpenAI,
Databricks (OpenAI-format endpoints), llama.cpp's llama-server — comes from
config, never from guessing at model names. The flavour decides the URL, the
auth header and the quirks (`OpenAIDialect`); the pure translators in
`lynkr.protocol` do all the format work (PROTOCOL.md B.2–B.5, B.7, B.8).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Literal

import orjson

from lynkr.errors import UpstreamError
from lynkr.protocol import SSEDecoder
from lynkr.protocol.openai_request import OpenAIDialect, to_openai_request
from lynkr.protocol.openai_response import to_anthropic_message
from lynkr.protocol.openai_stream import OpenAIStreamTranslator
from lynkr.protocol.server_tools import local_server_tool_answer
from lynkr.providers.base import MessagesRequest, ProviderResponse
from lynkr.providers.errors import error_from_upstream
from lynkr.providers.http import Timeouts, UpstreamClient, UpstreamResponse, forwarded_headers
from lynkr.providers.whole import repair_tool_calls, whole_message

__all__ = ["OpenAIProvider", "chat_completions_url"]

Flavour = Literal["openai", "openrouter", "azure-openai", "databricks", "llamacpp"]

_DEFAULT_BASE: dict[str, str] = {
    "openrouter": "https://openrouter.ai/api/v1",
    "llamacpp": "http://127.0.0.1:8080",
}
# Response headers passed back to the client (an allowlist).
_FORWARDED = ("x-request-id", "x-generation-id", "retry-after", "retry-after-ms")


class OpenAIProvider:
    """Calls one OpenAI-dialect upstream, translating Anthropic ⇄ OpenAI both ways."""

    def __init__(
        self,
        *,
        name: str,
        flavour: Flavour = "openai",
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        api_version: str | None = None,
        timeouts: Timeouts | None = None,
        headers: Mapping[str, str] | None = None,
        max_output_tokens: int | None = None,
        reasoning: bool = False,
        supports_images: bool = True,
        supports_tools: bool = True,
        tool_text_repair: bool = False,
    ) -> None:
        base = base_url or _DEFAULT_BASE.get(flavour)
        if not base:
            raise ValueError(f"provider '{name}' of type {flavour} needs a base_url")
        if flavour == "azure-openai" and not model:
            raise ValueError(f"provider '{name}' of type azure-openai needs a deployment")
        self.name = name
        self.flavour = flavour
        self.model = model
        self.url = chat_completions_url(flavour, base, deployment=model, api_version=api_version)
        self.tool_text_repair = tool_text_repair
        self.dialect = _dialect(
            flavour,
            model=model,
            classic_azure=flavour == "azure-openai" and api_version not in (None, "v1", "preview"),
            max_output_tokens=max_output_tokens,
            reasoning=reasoning,
            supports_images=supports_images,
            supports_tools=supports_tools,
        )
        self.fixed_headers = {"content-type": "application/json", **dict(headers or {})}
        if api_key:
            if flavour == "azure-openai":
                self.fixed_headers["api-key"] = api_key
            else:
                self.fixed_headers["authorization"] = f"Bearer {api_key}"
        self.client = UpstreamClient(name=name, timeouts=timeouts or Timeouts())

    async def open(self) -> None:
        await self.client.open()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def count_tokens(self, request: MessagesRequest) -> int | None:
        return None  # Chat Completions has no counting endpoint: the agent estimates locally.

    @asynccontextmanager
    async def messages(self, request: MessagesRequest) -> AsyncIterator[ProviderResponse]:
        client_model = str(request.body.get("model") or self.model or "")
        local = local_server_tool_answer(request.body, model=client_model)
        if local is not None:
            yield whole_message(local, stream=request.stream)
            return
        # Repairing tool calls written as text needs the whole answer: ask for it whole,
        # then replay it as a stream if the client wanted one.
        upstream_stream = request.stream and not self.tool_text_repair
        body = to_openai_request(request.body, self.dialect)
        if not upstream_stream:
            body.pop("stream", None)
            body.pop("stream_options", None)
        async with self.client.stream(
            "POST", self.url, headers=self.fixed_headers, content=orjson.dumps(body)
        ) as response:
            if response.status >= 300:
                raise await self._error(response)
            headers = forwarded_headers(response, _FORWARDED)
            if upstream_stream:
                chunks = self._translate_stream(response, request, client_model)
                yield ProviderResponse(True, chunks, headers)
            else:
                message = await self._whole(response, request, client_model)
                yield whole_message(message, stream=request.stream, headers=headers)

    async def _translate_stream(
        self, response: UpstreamResponse, request: MessagesRequest, model: str
    ) -> AsyncIterator[bytes]:
        translator = OpenAIStreamTranslator(
            model=model,
            context_full_on_length=self.flavour == "llamacpp",
            requested_max_tokens=_int(request.body.get("max_tokens")),
        )
        yield translator.start()
        decoder = SSEDecoder()
        done = False
        try:
            async for chunk in response.iter_chunks():
                out, done = _feed_events(translator, decoder.feed(chunk))
                if out:
                    yield out
                if done or translator.errored:
                    break
        except UpstreamError as error:
            yield translator.fail(error.message, error.error_type)
            return
        if not translator.errored:
            yield translator.finish(done=done)

    async def _whole(
        self, response: UpstreamResponse, request: MessagesRequest, model: str
    ) -> dict[str, Any]:
        try:
            answer = orjson.loads(await response.read())
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"provider '{self.name}' answered with a body that is not JSON", provider=self.name
            ) from exc
        message = to_anthropic_message(
            answer,
            model=model,
            context_full_on_length=self.flavour == "llamacpp",
            requested_max_tokens=_int(request.body.get("max_tokens")),
        )
        if self.tool_text_repair:
            message = repair_tool_calls(message, request.body)
        return message

    async def _error(self, response: UpstreamResponse) -> Exception:
        body = await response.read(limit=1024 * 1024)
        return error_from_upstream(
            response.status, body, response.headers, provider=self.name, model=self.model
        )


def _feed_events(translator: OpenAIStreamTranslator, events: Any) -> tuple[bytes, bool]:
    """Feed decoded SSE events to the translator; True once `[DONE]` arrived."""
    out = bytearray()
    for event in events:
        data = event.data.strip()
        if not data:
            continue
        if data == b"[DONE]":
            return bytes(out), True
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            out += translator.fail("the provider sent a stream event that is not JSON")
            return bytes(out), False
        if isinstance(parsed, dict):
            out += translator.feed(parsed)
            if translator.errored:
                break
    return bytes(out), False


def chat_completions_url(
    flavour: Flavour, base_url: str, *, deployment: str | None = None, api_version: str | None
) -> str:
    """Where each dialect takes Chat Completions (B.2, B.7, B.8, B.9 Databricks)."""
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if flavour == "azure-openai":
        if api_version in (None, "v1", "preview"):
            suffix = f"?api-version={api_version}" if api_version == "preview" else ""
            return f"{base}/openai/v1/chat/completions{suffix}"
        return f"{base}/openai/deployments/{deployment}/chat/completions?api-version={api_version}"
    if flavour == "databricks":
        if not base.endswith("/serving-endpoints"):
            base += "/serving-endpoints"
        return base + "/chat/completions"
    if flavour == "llamacpp" and not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


def _dialect(
    flavour: Flavour,
    *,
    model: str | None,
    classic_azure: bool,
    max_output_tokens: int | None,
    reasoning: bool,
    supports_images: bool,
    supports_tools: bool,
) -> OpenAIDialect:
    """The quirks of each flavour (B.3 notes, B.7, B.8)."""
    dialect = OpenAIDialect(
        model=None if classic_azure else model,
        max_output_tokens=max_output_tokens,
        reasoning=reasoning,
        supports_images=supports_images,
        supports_tools=supports_tools,
    )
    if flavour in ("openai", "azure-openai"):
        dialect = replace(dialect, max_stop_sequences=4, file_parts=flavour == "openai")
        if reasoning:
            dialect = replace(dialect, max_tokens_field="max_completion_tokens")
    elif flavour == "openrouter":
        dialect = replace(dialect, keep_top_k=True, file_parts=True)
    elif flavour == "llamacpp":
        dialect = replace(dialect, keep_top_k=True, parallel_tool_calls=True)
    return dialect


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
