"""Substitute `${VAR}` references from the environment into string values.

Only string scalar values are touched, never keys, and a substituted value
stays a string: `port: ${PORT}` gives the string "8080", which the schema then
reports as a type error (values come from the environment as text, and
guessing types from them is how YAML 1.1 got `NO` == false).

Forms, the POSIX shell's subset that fits in a config file:

    ${VAR}            the value; an issue when VAR is unset
    ${VAR:-default}   `default` when VAR is unset or empty (the default is literal)
    ${VAR:?message}   an issue saying `message` when VAR is unset or empty
    $$                a literal `$`

Any other `$` is left as it is, so `$HOME` or a price like `5$` need no escape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from lynkr.config.source import Document, Path
from lynkr.errors import ConfigIssue

__all__ = ["interpolate"]

# `$$`, or `${` up to the next `}` (or to the end when there is none).
_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)(?P<close>\}?)")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-?])(?P<arg>.*))?\Z", re.DOTALL)


def interpolate(
    document: Document, environ: Mapping[str, str]
) -> tuple[Document, list[ConfigIssue], frozenset[Path]]:
    """Expand references in every string value of `document` from `environ`.

    Returns the new document, the issues (unset or malformed references, each
    located at its value), and the paths of all values that held a `${...}`,
    so that whatever came from the environment can be redacted when shown.
    """
    walker = _Walker(document, environ)
    data = walker.walk(document.data, ())
    return replace(document, data=data), walker.issues, frozenset(walker.paths)


class _Walker:
    def __init__(self, document: Document, environ: Mapping[str, str]) -> None:
        self.document = document
        self.environ = environ
        self.issues: list[ConfigIssue] = []
        self.paths: set[Path] = set()

    def walk(self, value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return {key: self.walk(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.walk(item, (*path, index)) for index, item in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            return self.expand(value, path)
        return value

    def expand(self, text: str, path: Path) -> str:
        """`text` with every reference replaced; a failing reference is kept as written."""

        def substitute(match: re.Match[str]) -> str:
            if match.group() == "$$":
                return "$"
            self.paths.add(path)
            value, problem = self.resolve(match)
            if problem:
                self.issues.append(self.document.issue(path, problem))
            return match.group() if value is None else value

        return _REFERENCE.sub(substitute, text)

    def resolve(self, match: re.Match[str]) -> tuple[str | None, str]:
        """The value of one `${...}` reference, or None and what is wrong with it."""
        written = match.group()
        if not match.group("close"):
            return None, f"unclosed {written!r}: end it with '}}', or write $$ for a literal '$'"
        body = _BODY.match(match.group("body"))
        if body is None:
            return None, (
                f"bad variable reference {written!r}: write ${{NAME}}, ${{NAME:-default}} or"
                " ${NAME:?message}, NAME being letters, digits and '_', not starting with a digit"
            )
        name, op, arg = body.group("name", "op", "arg")
        value = self.environ.get(name)
        if op is None:
            if value is None:
                return None, (
                    f"environment variable {name} is not set"
                    f" (set it, or write ${{{name}:-default}} for a default)"
                )
            return value, ""
        if value:
            return value, ""
        if op == ":-":
            return arg, ""
        state = "is not set" if value is None else "is empty"
        return None, f"environment variable {name} {state}" + (f": {arg}" if arg else "")
