from __future__ import annotations

import pytest

from lynkr.providers.openai import chat_completions_url


@pytest.mark.parametrize(
    ("flavour", "base", "version", "url"),
    [
        ("openai", "http://127.0.0.1:9000/v1", None, "http://127.0.0.1:9000/v1/chat/completions"),
        (
            "openrouter",
            "https://openrouter.ai/api/v1/",
            None,
            "https://openrouter.ai/api/v1/chat/completions",
        ),
        (
            "azure-openai",
            "https://r.openai.azure.com",
            "2024-10-21",
            "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
        ),
        (
            "azure-openai",
            "https://r.openai.azure.com",
            None,
            "https://r.openai.azure.com/openai/v1/chat/completions",
        ),
        (
            "databricks",
            "https://w.cloud.databricks.com",
            None,
            "https://w.cloud.databricks.com/serving-endpoints/chat/completions",
        ),
        ("llamacpp", "http://127.0.0.1:8080", None, "http://127.0.0.1:8080/v1/chat/completions"),
        ("llamacpp", "http://127.0.0.1:8080/v1", None, "http://127.0.0.1:8080/v1/chat/completions"),
        ("openai", "http://h/x/chat/completions", None, "http://h/x/chat/completions"),
    ],
)
def test_chat_completions_url(flavour: str, base: str, version: str | None, url: str) -> None:
    assert chat_completions_url(flavour, base, deployment="d", api_version=version) == url  # type: ignore[arg-type]
