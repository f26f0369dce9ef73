"""The provider table: a type (and its `format`) picks the adapter, built from its settings."""

from __future__ import annotations

import pytest

from lynkr.providers import ProviderSettings, build_provider, dialect_of
from lynkr.providers.anthropic import AnthropicProvider
from lynkr.providers.ollama import OllamaProvider
from lynkr.providers.openai import OpenAIProvider


@pytest.mark.parametrize(
    ("kind", "options", "adapter"),
    [
        ("anthropic", {}, AnthropicProvider),
        ("azure-anthropic", {}, AnthropicProvider),
        ("databricks", {}, AnthropicProvider),
        ("databricks", {"format": "openai"}, OpenAIProvider),
        ("openai", {}, OpenAIProvider),
        ("openrouter", {}, OpenAIProvider),
        ("azure-openai", {"api_version": "2024-10-21"}, OpenAIProvider),
        ("llamacpp", {}, OpenAIProvider),
        ("ollama", {"num_ctx": 8192}, OllamaProvider),
    ],
)
def test_each_type_gets_its_dialect(kind: str, options: dict[str, object], adapter: type) -> None:
    settings = ProviderSettings(
        name="p", type=kind, base_url="http://127.0.0.1:9", model="m", options=options
    )
    built = build_provider(settings)
    assert type(built) is adapter
    assert built.name == "p"


def test_type_specific_options_reach_the_adapter() -> None:
    settings = ProviderSettings(
        name="p",
        type="anthropic",
        base_url="http://127.0.0.1:9",
        timeout={"connect": 2.5, "read": None},
        options={"betas": {"allow": ["a-*"], "drop": ["b"]}, "count_tokens": "local"},
    )
    built = build_provider(settings)
    assert built.client.timeouts.connect == 2.5 and built.client.timeouts.read == 600.0
    assert built.count_mode == "local"
    assert built.betas_allow == ("a-*",) and built.betas_drop == ("b",)


def test_an_unknown_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown provider type 'grpc'; known: anthropic"):
        dialect_of(ProviderSettings(name="p", type="grpc"))


def test_a_bad_setting_is_the_adapters_own_fixable_error() -> None:
    with pytest.raises(ValueError, match="needs a model"):
        build_provider(ProviderSettings(name="p", type="ollama"))
