"""Globs over paths (`files.*` rules) and over names (tools, models).

Path globs: `*` within one name, `**` any depth, `?` one character; a pattern
without `/` matches the last name at any depth, as in .gitignore. Name globs
are fnmatch's, case-insensitive.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["glob_matches", "name_matches"]


def glob_matches(patterns: Iterable[str], path: str) -> str | None:
    """The first pattern that matches `path`, or None.

    Patterns use `*` (within one name), `**` (any depth) and `?`. A pattern
    without `/` matches the last name at any depth (`.env` matches `a/.env`),
    as in .gitignore; with `/` it matches the whole relative (or absolute) path.
    """
    for pattern in patterns:
        target = path if "/" in pattern.rstrip("/") else posixpath.basename(path)
        if _glob_regex(pattern.rstrip("/")).fullmatch(target):
            return pattern
        if "/" in pattern and _glob_regex(pattern.rstrip("/") + "/**").fullmatch(path):
            return pattern  # a directory pattern covers what is inside it
    return None


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts), re.DOTALL)


def name_matches(patterns: Iterable[str], name: str) -> str | None:
    """The first glob in `patterns` matching `name`, case-insensitively (tool and model names)."""
    lowered = name.lower()
    for pattern in patterns:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            return pattern
    return None
