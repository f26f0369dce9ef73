"""The adapter for OpenAI Chat Completions upstreams, one class for every such dialect.

Which dialect — OpenAI or any compatible server, OpenRouter, Azure OpenAI,
Databricks (OpenAI-format endpoints), llama.cpp's llama-server — comes from
config, never from guessing at model names. The flavour decides the URL, the
auth header and the quirks (`OpenAIDialect`); the pure translators in
`lynkr.protocol` do all the format work (docs/protocol.md B.2–B.5, B.7, B.8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal, cast

import orjson

from lynkr.errors import UpstreamError
from lynkr.protocol.openai_request import OpenAIDialect, to_openai_request
from lynkr.protocol.openai_response import to_anthropic_message
from lynkr.protocol.openai_stream import OpenAIStreamTranslator
from lynkr.protocol.sse import SSEDataDecoder
from lynkr.providers.base import MessagesRequest, ProviderSettings
from lynkr.providers.errors import provider_secrets
from lynkr.providers.http import Timeouts, UpstreamClient
from lynkr.providers.translating import TranslatingProvider

__all__ = ["OpenAIProvider", "chat_completions_url"]

Flavour = Literal["openai", "openrouter", "azure-openai", "databricks", "llamacpp"]

_DEFAULT_BASE: dict[str, str] = {
    "openrouter": "https://openrouter.ai/api/v1",
    "llamacpp": "http://127.0.0.1:8080",
}


class OpenAIProvider(TranslatingProvider):
    """Calls one OpenAI-dialect upstream, translating Anthropic ⇄ OpenAI both ways."""

    forwarded = ("x-request-id", "x-generation-id", "retry-after", "retry-after-ms")

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> OpenAIProvider:
        """The adapter for an OpenAI-dialect provider as lynkr.yaml configures it."""
        return cls(
            **settings.common(),
            flavour=cast(Flavour, settings.type),
            **settings.chosen(
                "api_version",
                "max_output_tokens",
                "reasoning",
                "supports_images",
                "supports_tools",
                "tool_text_repair",
            ),
        )

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
        # llama.cpp also says "length" when its context is full (docs/protocol.md B.4).
        self.context_full_on_length = flavour == "llamacpp"
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
        self.secrets = provider_secrets(api_key, headers)
        self.client = UpstreamClient(name=name, timeouts=timeouts or Timeouts())

    def translate_request(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        translated = to_openai_request(body, self.dialect)
        if not stream:
            translated.pop("stream", None)
            translated.pop("stream_options", None)
        return translated

    def translate_message(
        self, answer: dict[str, Any], request: MessagesRequest, model: str
    ) -> dict[str, Any]:
        return to_anthropic_message(
            answer,
            model=model,
            context_full_on_length=self.context_full_on_length,
            requested_max_tokens=self._sent_max_tokens(request),
        )

    def stream_translator(self, request: MessagesRequest, model: str) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(
            model=model,
            context_full_on_length=self.context_full_on_length,
            requested_max_tokens=self._sent_max_tokens(request),
        )

    def _sent_max_tokens(self, request: MessagesRequest) -> int | None:
        """The max_tokens the upstream was sent: the client's, clamped to the model's cap."""
        asked = _int(request.body.get("max_tokens"))
        cap = self.dialect.max_output_tokens
        if asked is None or cap is None:
            return asked if asked is not None else cap
        return min(asked, cap)

    def stream_reader(self) -> _SSEReader:
        return _SSEReader(self.name)


class _SSEReader:
    """OpenAI SSE → parsed chunk objects; `[DONE]` ends it (B.2)."""

    __slots__ = ("decoder", "done", "provider")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.decoder = SSEDataDecoder()
        self.done = False

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        items = []
        for data in self.decoder.feed(chunk):
            if not (data and data[0] == 0x7B and data[-1] == 0x7D):  # not the usual `{…}`
                data = data.strip()
                if data == b"[DONE]":
                    self.done = True
                    break
                if not data:
                    continue
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise UpstreamError(
                    f"provider '{self.provider}' sent a stream event that is not JSON",
                    provider=self.provider,
                ) from exc
            if type(parsed) is dict:
                items.append(parsed)
        return items


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
