"""`OpenAIDialect`: what one OpenAI-compatible upstream accepts, decided from config.

The request and response translators read it; lynkr never guesses a dialect
from a model name. Section labels (B.3, B.7, B.8) are docs/protocol.md's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["OpenAIDialect"]


@dataclass(frozen=True, slots=True)
class OpenAIDialect:
    """What one OpenAI-compatible upstream accepts (B.3's "Notes" column, B.7, B.8).

    `model`: the body's `model`; None omits it (Azure classic deployment URLs).
    `max_output_tokens`: the cap `max_tokens` is clamped to. `reasoning`: the
    model takes `reasoning_effort`, so thinking/effort are mapped. The other
    fields switch single rows of B.3; each is documented where it is used.
    """

    model: str | None
    max_output_tokens: int | None = None
    reasoning: bool = False
    supports_images: bool = True
    supports_tools: bool = True
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    system_role: Literal["system", "developer"] = "system"
    mid_conversation_system: Literal["convert", "keep"] = "convert"
    keep_top_k: bool = False
    max_stop_sequences: int | None = None
    parallel_tool_calls: bool | None = None
    keep_cache_control: bool = False
    reasoning_history: bool = False
    empty_tool_result: str = ""
    strip_additional_properties: bool = False
    include_usage: bool = True
    file_parts: bool = False
