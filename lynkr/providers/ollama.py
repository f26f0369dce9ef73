"""The adapter for Ollama's native `/api/chat` (NDJSON), docs/protocol.md B.6.

Ollama also serves an Anthropic-compatible `/v1/messages` (use `type:
anthropic` for that); the native API is what older versions have and what
exposes `num_ctx`, whose small default silently truncates Claude Code's
~20k-token prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lynkr.protocol import NDJSONDecoder
from lynkr.protocol.ollama import (
    OllamaOptions,
    OllamaStreamTranslator,
    ollama_to_anthropic_message,
    to_ollama_request,
)
from lynkr.providers.base import MessagesRequest, ProviderSettings
from lynkr.providers.errors import provider_secrets
from lynkr.providers.http import Timeouts, UpstreamClient
from lynkr.providers.translating import TranslatingProvider

__all__ = ["OllamaProvider"]


class OllamaProvider(TranslatingProvider):
    """Calls Ollama's `/api/chat`, translating Anthropic ⇄ Ollama both ways."""

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> OllamaProvider:
        """The adapter for an Ollama provider as lynkr.yaml configures it."""
        return cls(
            **settings.common(),
            **settings.chosen(
                "max_output_tokens",
                "num_ctx",
                "think",
                "keep_alive",
                "supports_images",
                "tool_text_repair",
            ),
        )

    def __init__(
        self,
        *,
        name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeouts: Timeouts | None = None,
        headers: Mapping[str, str] | None = None,
        max_output_tokens: int | None = None,
        num_ctx: int | None = None,
        think: bool | str | None = None,
        keep_alive: str | None = None,
        supports_images: bool = True,
        tool_text_repair: bool = False,
    ) -> None:
        if not model:
            raise ValueError(f"provider '{name}' of type ollama needs a model (e.g. qwen3-coder)")
        self.name = name
        self.model = model
        base = (base_url or "http://127.0.0.1:11434").rstrip("/")
        self.url = base if base.endswith("/api/chat") else base + "/api/chat"
        self.options = OllamaOptions(
            model=model,
            max_output_tokens=max_output_tokens,
            num_ctx=num_ctx,
            think=think,
            supports_images=supports_images,
            keep_alive=keep_alive,
        )
        self.tool_text_repair = tool_text_repair
        self.fixed_headers = {"content-type": "application/json", **dict(headers or {})}
        if api_key:
            self.fixed_headers["authorization"] = f"Bearer {api_key}"
        self.secrets = provider_secrets(api_key, headers)
        self.client = UpstreamClient(name=name, timeouts=timeouts or Timeouts())

    def translate_request(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        translated = to_ollama_request(body, self.options)
        translated["stream"] = stream  # Ollama streams unless told otherwise.
        return translated

    def translate_message(
        self, answer: dict[str, Any], request: MessagesRequest, model: str
    ) -> dict[str, Any]:
        return ollama_to_anthropic_message(answer, model=model)

    def stream_translator(self, request: MessagesRequest, model: str) -> OllamaStreamTranslator:
        return OllamaStreamTranslator(model=model)

    def stream_reader(self) -> _NDJSONReader:
        return _NDJSONReader()


class _NDJSONReader:
    """Ollama NDJSON → parsed line objects; a `done: true` line ends it (B.6)."""

    def __init__(self) -> None:
        self.decoder = NDJSONDecoder()
        self.done = False

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        items = []
        for item in self.decoder.feed(chunk):
            if isinstance(item, dict):
                items.append(item)
                if item.get("done") is True:
                    self.done = True
        return items
