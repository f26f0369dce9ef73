"""Provider adapters, one per wire dialect, and the table from provider types to them.

A provider `type:` in lynkr.yaml names a flavour of one of three dialects:
Anthropic Messages (`anthropic`), OpenAI Chat Completions (`openai`) and
Ollama's `/api/chat` (`ollama`); `format: openai` moves a type to the OpenAI
dialect (Databricks serves both). The table holds import strings, resolved
only when a config uses the dialect (the uvicorn way), so a gateway loads only
the adapters it needs. Adding a provider is a line in `TYPES` (and its
flavour in the adapter); adding a dialect is a module and a line in `DIALECTS`.

Every adapter class takes its settings through `from_settings(ProviderSettings)`.
"""

from __future__ import annotations

import importlib
from typing import Any

from lynkr.providers.base import ProviderSettings

__all__ = ["DIALECTS", "TYPES", "ProviderSettings", "build_provider", "dialect_of"]

DIALECTS: dict[str, str] = {
    "anthropic": "lynkr.providers.anthropic:AnthropicProvider",
    "openai": "lynkr.providers.openai:OpenAIProvider",
    "ollama": "lynkr.providers.ollama:OllamaProvider",
}
# Provider type → the dialect it speaks unless its `format` says otherwise.
TYPES: dict[str, str] = {
    "anthropic": "anthropic",
    "azure-anthropic": "anthropic",
    "databricks": "anthropic",
    "openai": "openai",
    "openrouter": "openai",
    "azure-openai": "openai",
    "llamacpp": "openai",
    "ollama": "ollama",
}


def dialect_of(settings: ProviderSettings) -> str:
    """The dialect `settings` speak: its `format` option, else its type's."""
    chosen = settings.options.get("format")
    if isinstance(chosen, str) and chosen in DIALECTS:
        return chosen
    try:
        return TYPES[settings.type]
    except KeyError:
        known = ", ".join(sorted(TYPES))
        raise ValueError(f"unknown provider type {settings.type!r}; known: {known}") from None


def build_provider(settings: ProviderSettings) -> Any:
    """The adapter for one provider; `ValueError` with a fixable message for bad settings."""
    module_name, _, attribute = DIALECTS[dialect_of(settings)].partition(":")
    adapter = getattr(importlib.import_module(module_name), attribute)
    return adapter.from_settings(settings)
