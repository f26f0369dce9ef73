"""The request-header helpers: first value, every value, all headers by name."""

from __future__ import annotations

from lynkr.asgi import Scope, header, header_dict, header_values

SCOPE: Scope = {
    "type": "http",
    "headers": [
        (b"anthropic-beta", b"claude-code-20250219"),
        (b"x-api-key", b"k\xe9y"),
        (b"anthropic-beta", b"interleaved-thinking-2025-05-14"),
    ],
}


def test_header_is_the_first_value() -> None:
    assert header(SCOPE, b"anthropic-beta") == "claude-code-20250219"
    assert header(SCOPE, b"x-api-key") == "k\xe9y"  # latin-1, as HTTP header bytes are
    assert header(SCOPE, b"authorization") is None


def test_header_values_are_every_value_in_order() -> None:
    assert header_values(SCOPE, b"anthropic-beta") == [
        "claude-code-20250219",
        "interleaved-thinking-2025-05-14",
    ]
    assert header_values(SCOPE, b"authorization") == []


def test_header_dict_keeps_the_last_of_a_repeated_header() -> None:
    assert header_dict(SCOPE) == {
        "anthropic-beta": "interleaved-thinking-2025-05-14",
        "x-api-key": "k\xe9y",
    }


def test_a_scope_without_headers_has_none() -> None:
    scope: Scope = {"type": "http"}
    assert (header(scope, b"x"), header_values(scope, b"x"), header_dict(scope)) == (None, [], {})
