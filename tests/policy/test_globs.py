"""Path and name globs: the meaning policy files rely on, and no backtracking blow-up."""

from __future__ import annotations

import pytest

from lynkr.policy import Policy, evaluate_request
from lynkr.policy.globs import glob_matches, name_matches


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        # a name pattern matches the last name at any depth; dot-names like any other
        (".env", "a/b/.env", True),
        ("*.pem", "keys/.secret.pem", True),
        ("id_rsa*", "/home/me/.ssh/id_rsa.pub", True),
        (".env", "a/.env/x", False),
        (".ENV", ".env", False),  # paths are case-sensitive
        # a path pattern matches the whole path, and what is inside a directory
        (".git/**", ".git/hooks/pre-commit", True),
        (".git", ".git/config", False),
        ("secrets/", "secrets/a/b", True),
        ("/etc/**", "/etc", False),
        ("/etc/**", "/etc/ssl/x", True),
        ("src/*/x", "src/a/b/x", False),
        ("src/**/*.py", "src/app.py", True),
        ("src/**/*.py", "src/a/b/c.py", True),
        ("**/x", ".git/x", True),
        # a `**` glued to a name still spans directories
        ("src/**.py", "src/a/b.py", True),
        ("src/a**b", "src/a/x/yb", True),
        ("src/a**b", "src/ab", True),
        ("a/***/b", "a/x/y/b", True),
        # a climb out (no workspace to resolve it in) does not hide a `**` pattern's match
        ("**/.env", "../.env", True),
        ("**/secrets/**", "../../secrets/key", True),
        ("secrets/**", "../secrets/key", False),
        # `[` and `\` are plain characters; `?` is one character, not `/`
        ("[ab]", "x/[ab]", True),
        ("[ab]", "x/a", False),
        ("a\\b", "a\\b", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("{a,b}", "{a,b}", True),
    ],
)
def test_path_globs(pattern: str, path: str, matches: bool) -> None:
    assert (glob_matches([pattern], path) == pattern) is matches


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("mcp.github.*", "MCP.GitHub.create_issue", True),  # names ignore case
        ("BASH", "bash", True),
        ("*", "", True),  # a request without a model passes allow_models: ["*"]
        ("?", "", False),
        ("gpt-?o", "gpt-4o", True),
        ("[ab]x", "bx", True),
        ("[!a]*", "a", False),
        ("[^a]*", "^", True),  # fnmatch's `[^…]` is a `^` or an `a`, not a negation
        ("[^a]*", "b", False),
        ("a\\b", "a\\b", True),
        ("*", "a/b", True),  # `*` spans everything in a name
    ],
)
def test_name_globs(pattern: str, name: str, matches: bool) -> None:
    assert (name_matches([pattern], name) == pattern) is matches


def test_the_first_matching_pattern_is_named() -> None:
    assert glob_matches(["*.py", ".env*", ".env"], "a/.env") == ".env*"
    assert name_matches(["gpt-*", "claude-*", "*"], "claude-x") == "claude-*"
    assert glob_matches([], "a") is None


def test_a_request_without_a_model_meets_allow_models_star() -> None:
    decision, _ = evaluate_request(Policy(), {"messages": []})
    assert decision.allowed


# Each `*` of the former translation was a `[^/]*` that backtracked against every other:
# this match took 28 ms at 24 characters and grew as n^9; at 2000 it never finished.
STARS = "*a*a*a*a*a*a*a*a*a*b"


def test_many_stars_do_not_backtrack() -> None:
    for size in (24, 200, 2000):
        text = "a" * size
        assert glob_matches([STARS], text) is None
        assert glob_matches([STARS], f"dir/{text}b") == STARS
        assert glob_matches([f"**/{STARS}"], f"d/{text}") is None
        assert name_matches([STARS], text) is None
        assert name_matches([STARS], text + "b") == STARS
