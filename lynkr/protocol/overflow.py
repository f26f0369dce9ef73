"""Context-window overflow errors, reworded the way Claude Code recovers from them.

docs/protocol.md A.9: Claude Code parses exactly two messages. On ``input
length and `max_tokens` exceed context limit: A + B > C, …`` it retries once
with a smaller `max_tokens`; on `prompt is too long: N tokens > M maximum` it
compacts the conversation. Every other upstream wording is a dead end for
it, so B.4's error table says: recognise overflow from any upstream and
rewrite it into one of the two (golden case 41).
"""

from __future__ import annotations

import re

__all__ = ["rewrite_context_overflow"]

_NUM = r"\d[\d,]*"

# Does the message report a context overflow at all? One wording per line; the
# upstream that uses it is named when it is specific to one.
_OVERFLOW = re.compile(
    "|".join(
        [
            r"context[_ ]length[_ ]exceeded",  # OpenAI, Azure, Groq error code
            r"maximum context length",  # OpenAI, Azure, vLLM, DeepSeek, OpenRouter, Mistral
            r"exceed(?:s|ed)? (?:the )?(?:available |maximum |max )?context",  # llama.cpp, Ollama
            r"exceed_context_size",  # llama.cpp error type
            r"(?:prompt|input)(?: is)? too long",  # Anthropic, Bedrock
            r"longer than the (?:maximum model length|model's context length)",  # vLLM, SGLang
            r"exceeds the maximum number of tokens",  # Gemini's OpenAI layer
        ]
    ),
    re.IGNORECASE,
)

# Where the numbers are. Groups: `input` (prompt tokens, `functions` added to
# it), `max` (max_tokens), `limit` (context size), `total` (input + max, used
# as the input when nothing better is known). The first pattern to find a
# value wins, so the most specific come first.
_NUMBERS = [
    re.compile(p, re.IGNORECASE)
    for p in [
        # Anthropic's own two wordings.
        rf"context limit: (?P<input>{_NUM}) \+ (?P<max>{_NUM}) > (?P<limit>{_NUM})",
        rf"too long: (?P<input>{_NUM}) tokens > (?P<limit>{_NUM}) maximum",
        # OpenAI and most OpenAI-compatible servers.
        rf"\((?P<input>{_NUM}) in the messages, (?:(?P<functions>{_NUM}) in the functions, )?"
        rf"(?P<max>{_NUM}) in the completion\)",
        rf"\((?P<input>{_NUM}) in your prompt; (?P<max>{_NUM}) for the completion\)",
        rf"(?:requested|resulted in) (?P<input>{_NUM}) tokens in the messages",
        rf"messages resulted in (?P<input>{_NUM}) tokens",
        # OpenRouter.
        rf"\((?P<input>{_NUM}) of text input, (?:(?P<functions>{_NUM}) of tool input, )?"
        rf"(?P<max>{_NUM}) in the output\)",
        # vLLM (newer): "'max_tokens' … is too large: 32000. … your request has 5000 input tokens".
        rf"too large: (?P<max>{_NUM})",
        rf"request has (?P<input>{_NUM}) input tokens",
        # llama.cpp (message, and the fields of its JSON error body).
        rf"request \((?P<input>{_NUM}) tokens\)",
        rf"available context size \((?P<limit>{_NUM}) tokens\)",
        rf'"n_prompt_tokens"\s*:\s*(?P<input>{_NUM})',
        rf'"n_ctx"\s*:\s*(?P<limit>{_NUM})',
        # vLLM decoder prompt, SGLang, Gemini, Mistral.
        rf"prompt \(length (?P<input>{_NUM})\)",
        rf"maximum model length (?:of|is) (?P<limit>{_NUM})",
        rf"input \((?P<input>{_NUM}) tokens\)",
        rf"model's context length \((?P<limit>{_NUM}) tokens\)",
        rf"input token count \((?P<input>{_NUM})\)",
        rf"tokens allowed \((?P<limit>{_NUM})\)",
        rf"prompt contains (?P<input>{_NUM}) tokens",
        rf"model with (?P<limit>{_NUM}) maximum context length",
        # Generic limit and total wordings, last.
        rf"maximum context length (?:is|of) (?P<limit>{_NUM})",
        rf"you requested (?:about )?(?P<total>{_NUM}) tokens",
    ]
]


def rewrite_context_overflow(message: str) -> str | None:
    """Reword an upstream's context-overflow `message` for Claude Code, or None if it is not one.

    B.4: when input, max_tokens and context size are all known and
    input + max_tokens > context ≥ input, the answer is ``input length and
    `max_tokens` exceed context limit: A + B > C, decrease input length or
    `max_tokens` and try again`` (Claude Code then lowers max_tokens);
    otherwise `prompt is too long: N tokens > M maximum`, with 0 for a number
    the upstream did not give (Claude Code then compacts).
    """
    if _OVERFLOW.search(message) is None:
        return None
    found = _numbers(message)
    prompt, limit = found.get("input", 0) + found.get("functions", 0), found.get("limit", 0)
    completion = found.get("max")
    if "input" in found and completion is not None and prompt + completion > limit >= prompt:
        return (
            f"input length and `max_tokens` exceed context limit: {prompt} + {completion} > "
            f"{limit}, decrease input length or `max_tokens` and try again"
        )
    if "input" not in found:
        prompt = found.get("total", 0)
    return f"prompt is too long: {prompt} tokens > {limit} maximum"


def _numbers(message: str) -> dict[str, int]:
    """Every number the `_NUMBERS` patterns find, by group name; the first find wins."""
    found: dict[str, int] = {}
    for pattern in _NUMBERS:
        match = pattern.search(message)
        if match is None:
            continue
        for name, value in match.groupdict().items():
            if value is not None and name not in found:
                found[name] = int(value.replace(",", ""))
    return found
