"""`${VAR}` substitution in string values: forms, escapes, issues and secret tracking."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.config.interpolate import interpolate
from lynkr.config.source import parse_yaml

ENV = {"A": "alpha", "EMPTY": "", "PORT": "8080"}


def expand(value: str, environ: dict[str, str] = ENV) -> tuple[Any, list[str]]:
    document, _ = parse_yaml(f"key: {value}\n", "lynkr.yaml")
    result, issues, _ = interpolate(document, environ)
    return result.data["key"], [str(issue) for issue in issues]


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("${A}", "alpha"),
        ("pre-${A}-post", "pre-alpha-post"),
        ("${A}${A}", "alphaalpha"),
        ("${EMPTY}", ""),
        ("${A:-d}", "alpha"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-}", ""),
        ("'${UNSET:-a b:c}'", "a b:c"),
        ("${A:?must set A}", "alpha"),
        ("$$HOME", "$HOME"),
        ("$${A}", "${A}"),
        ("$$$${A}", "$${A}"),
        ("$HOME", "$HOME"),
        ("5$", "5$"),
        ("a $ b", "a $ b"),
        ("${PORT}", "8080"),
    ],
)
def test_substitutions(written: str, value: str) -> None:
    assert expand(written) == (value, [])


def test_unset_variable_is_an_issue_at_the_value_and_the_text_is_kept() -> None:
    assert expand("${ANTHROPIC_API_KEY}") == (
        "${ANTHROPIC_API_KEY}",
        [
            "lynkr.yaml:1:6: key: environment variable ANTHROPIC_API_KEY is not set"
            " (set it, or write ${ANTHROPIC_API_KEY:-default} for a default)"
        ],
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("${UNSET:?must set A}", "environment variable UNSET is not set: must set A"),
        ("${EMPTY:?must set A}", "environment variable EMPTY is empty: must set A"),
        ("${UNSET:?}", "environment variable UNSET is not set"),
    ],
)
def test_required_with_message(written: str, message: str) -> None:
    assert expand(written) == (written, [f"lynkr.yaml:1:6: key: {message}"])


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("${A", "unclosed '${A': end it with '}', or write $$ for a literal '$'"),
        ("x ${A:-d", "unclosed '${A:-d': end it with '}', or write $$ for a literal '$'"),
        (
            "${1A}",
            "bad variable reference '${1A}': write ${NAME}, ${NAME:-default} or"
            " ${NAME:?message}, NAME being letters, digits and '_', not starting with a digit",
        ),
        (
            "${}",
            "bad variable reference '${}': write ${NAME}, ${NAME:-default} or"
            " ${NAME:?message}, NAME being letters, digits and '_', not starting with a digit",
        ),
        (
            "${A-d}",
            "bad variable reference '${A-d}': write ${NAME}, ${NAME:-default} or"
            " ${NAME:?message}, NAME being letters, digits and '_', not starting with a digit",
        ),
    ],
)
def test_malformed_references(written: str, message: str) -> None:
    assert expand(written) == (written, [f"lynkr.yaml:1:6: key: {message}"])


def test_every_problem_in_one_value_is_reported() -> None:
    value, issues = expand("${X}-${Y}")
    assert value == "${X}-${Y}"
    assert [issue.split(": ", 2)[2][:24] for issue in issues] == [
        "environment variable X i",
        "environment variable Y i",
    ]


def test_only_string_values_change_never_keys_or_other_scalars() -> None:
    text = "${A}: ${A}\nport: 8080\nflag: true\nlist: ['${A}', 3, null]\n"
    document, _ = parse_yaml(text, "lynkr.yaml")
    result, issues, _ = interpolate(document, ENV)
    assert result.data == {"${A}": "alpha", "port": 8080, "flag": True, "list": ["alpha", 3, None]}
    assert issues == []
    assert document.data["list"] == ["${A}", 3, None]  # the input is not changed
    assert result.value_pos == document.value_pos
    assert result.key_pos == document.key_pos


def test_paths_of_substituted_values_are_returned_for_redaction() -> None:
    text = (
        "providers:\n"
        "  claude: {api_key: '${A}', model: m}\n"
        "  other: {api_key: '${UNSET:-none}', price: '$$5'}\n"
        "keys: [plain, 'Bearer ${A}', '${MISSING}']\n"
    )
    document, _ = parse_yaml(text, "lynkr.yaml")
    _, _, paths = interpolate(document, ENV)
    assert paths == frozenset(
        {
            ("providers", "claude", "api_key"),
            ("providers", "other", "api_key"),
            ("keys", 1),
            ("keys", 2),
        }
    )


def test_a_substituted_number_stays_a_string() -> None:
    assert expand("${PORT}") == ("8080", [])
