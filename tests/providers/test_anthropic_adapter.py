from __future__ import annotations

import pytest

from lynkr.providers.anthropic import AnthropicProvider, auth_headers, messages_url


@pytest.mark.parametrize(
    ("flavour", "base", "url"),
    [
        ("anthropic", "https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("anthropic", "http://127.0.0.1:11434/", "http://127.0.0.1:11434/v1/messages"),
        ("anthropic", "http://h/v1", "http://h/v1/messages"),
        (
            "azure-anthropic",
            "https://r.services.ai.azure.com/anthropic",
            "https://r.services.ai.azure.com/anthropic/v1/messages",
        ),
        (
            "databricks",
            "https://w.cloud.databricks.com",
            "https://w.cloud.databricks.com/serving-endpoints/anthropic/v1/messages",
        ),
        (
            "databricks",
            "https://w.cloud.databricks.com/serving-endpoints",
            "https://w.cloud.databricks.com/serving-endpoints/anthropic/v1/messages",
        ),
        (
            "databricks",
            "https://w/serving-endpoints/anthropic",
            "https://w/serving-endpoints/anthropic/v1/messages",
        ),
    ],
)
def test_messages_url(flavour: str, base: str, url: str) -> None:
    assert messages_url(flavour, base) == url  # type: ignore[arg-type]


def test_auth_headers() -> None:
    assert auth_headers("anthropic", "k", None) == {"x-api-key": "k"}
    assert auth_headers("databricks", "k", None) == {"authorization": "Bearer k"}
    assert auth_headers("azure-anthropic", "k", "api-key") == {"api-key": "k"}
    assert auth_headers("azure-anthropic", "k", "bearer") == {"authorization": "Bearer k"}


def test_default_base_url_only_for_anthropic() -> None:
    assert AnthropicProvider(name="a", api_key="k").messages_url.startswith("https://api.anthropic")
    with pytest.raises(ValueError, match="needs a base_url"):
        AnthropicProvider(name="f", flavour="azure-anthropic", api_key="k")
