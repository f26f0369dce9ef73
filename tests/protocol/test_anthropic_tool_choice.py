"""OpenAI's spelling of a forced tool, accepted on the Anthropic route."""

from __future__ import annotations

import pytest

from lynkr.protocol.anthropic import anthropic_tool_choice


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"type": "function", "function": {"name": "x"}}, {"type": "tool", "name": "x"}),
        ({"type": "function", "function": {"name": "x"}, "disable_parallel_tool_use": True},
         {"type": "tool", "name": "x", "disable_parallel_tool_use": True}),
        ({"type": "tool", "name": "x"}, {"type": "tool", "name": "x"}),
        ({"type": "auto"}, {"type": "auto"}),
        (None, None),
    ],
)  # fmt: skip
def test_anthropic_tool_choice(given: object, expected: object) -> None:
    assert anthropic_tool_choice(given) == expected
    if given == expected:
        assert anthropic_tool_choice(given) is given  # untouched: the body stays as sent
