"""Globs over paths (`files.*` rules) and over names (tools, models), matched by wcmatch.

Path globs (`glob_matches`): `*` within one name, `**` any depth, `?` one
character, names starting with a dot matched like any other; `[` and `\\` are
plain characters. A pattern without `/` matches the last name at any depth
(`.env` matches `a/.env`), as in .gitignore; one with `/` matches the whole
relative (or absolute) path, and what is inside it. Name globs
(`name_matches`): fnmatch's (`*` matches anything, `[…]` classes), without
regard to case.

wcmatch translates each pattern (once: cached) into a regular expression
whose stars are atomic groups, so a pattern of many `*` costs linear time
where the former hand-written translation backtracked; per match,
`benchmarks/globs.py`: default policy's files.deny + deny_write 0.55 → 0.30 µs,
a matching `**` 0.32 → 1.2 µs, `*a*a*a*a*a*a*a*a*a*b` against 24 `a`s 28 ms → 1 µs.
pathspec, the other candidate, speaks gitignore (a leading `/` anchors to
the tree, not to `/`; a name pattern also matches inside a directory of that
name) and backtracks as the former translation did.

Where wcmatch follows bash and the former translation did not, patterns are
adapted so that policy files keep their meaning: a `**` glued to a name
(`src/**.py`) still spans directories; a pattern of stars still matches an
empty name; a climb out at the start of a normalised path (`../`, met only
without a workspace) is skipped for a pattern that starts with `**`. What stays
bash's: a wildcard never matches a `.` or `..` name by itself (`*` does not
match the path `.`, `../*` does not match `../..`).
"""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from wcmatch import fnmatch as wcfnmatch
from wcmatch import glob as wcglob

__all__ = ["glob_matches", "name_matches"]

_PATH_FLAGS = wcglob.GLOBSTAR | wcglob.DOTGLOB | wcglob.CASE | wcglob.FORCEUNIX
_NAME_FLAGS = wcfnmatch.DOTMATCH | wcfnmatch.CASE | wcfnmatch.FORCEUNIX
# A run of stars that is not a whole path segment (`a**`, `**b`, `***`).
_GLUED_STARS = re.compile(r"\*{3,}|(?<=[^/])\*\*|\*\*(?=[^/])")
_CLIMB = re.compile(r"(?:\.\./)+")


def glob_matches(patterns: Iterable[str], path: str) -> str | None:
    """The first pattern that matches `path` (a normalised path), or None."""
    name = posixpath.basename(path)
    unclimbed = _CLIMB.sub("", path, count=1) if path.startswith("../") else path
    for pattern in patterns:
        compiled = _path_glob(pattern)
        if compiled.name is not None and compiled.name.fullmatch(name):
            return pattern
        whole = unclimbed if compiled.skips_climb else path
        if compiled.path is not None and compiled.path.fullmatch(whole):
            return pattern
    return None


def name_matches(patterns: Iterable[str], name: str) -> str | None:
    """The first glob in `patterns` matching `name`, case-insensitively (tool and model names)."""
    lowered = name.lower()
    for pattern in patterns:
        if _name_glob(pattern.lower()).fullmatch(lowered):
            return pattern
    return None


@dataclass(frozen=True, slots=True)
class _PathGlob:
    """One path pattern, compiled: for the last name, for the whole path, or both."""

    name: re.Pattern[str] | None
    path: re.Pattern[str] | None
    skips_climb: bool  # starts with `**`: matched against the path without its leading `../`s


@lru_cache(maxsize=1024)
def _path_glob(pattern: str) -> _PathGlob:
    bare = pattern.rstrip("/")
    whole = [bare] if "/" in bare else []
    if "/" in pattern:
        whole.append(bare + "/**")  # a directory pattern covers what is inside it
    return _PathGlob(
        name=None if "/" in bare else _either(_translated(bare), stars=_stars(bare)),
        path=_either([e for w in whole for e in _translated(w)], stars=False) if whole else None,
        skips_climb=bare.startswith("**"),
    )


def _translated(pattern: str) -> list[str]:
    """wcmatch's expressions for a path pattern, `[` and `\\` taken literally.

    A `**` glued to a name means "anything, `/` included": a `*`, or a `*/**/*`.
    """
    literal = pattern.replace("\\", "\\\\").replace("[", "\\[")
    pieces = _GLUED_STARS.split(literal)
    variants = [
        "".join(itertools.chain.from_iterable(zip(pieces, (*choice, ""), strict=True)))
        for choice in itertools.product(("*", "*/**/*"), repeat=len(pieces) - 1)
    ]
    include, _ = wcglob.translate(variants, flags=_PATH_FLAGS)
    return include


@lru_cache(maxsize=1024)
def _name_glob(pattern: str) -> re.Pattern[str]:
    # fnmatch's `\\` is a plain character, and so is the `^` of `[^…]`.
    literal = pattern.replace("\\", "\\\\").replace("[^", "[\\^")
    include, _ = wcfnmatch.translate(literal, flags=_NAME_FLAGS)
    return _either(include, stars=_stars(pattern))


def _stars(pattern: str) -> bool:
    return pattern.strip("*") == ""


def _either(expressions: list[str], *, stars: bool) -> re.Pattern[str]:
    """One expression for all of wcmatch's; one of `stars` alone also matches ''.

    (wcmatch, like bash, never lets a `*` match an empty name; fnmatch and the
    former translation did, and `allow_models: ["*"]` relies on it.)
    """
    unique = dict.fromkeys([*expressions, ""] if stars else expressions)  # `a/**/**` is `a/**`
    return re.compile("|".join(f"(?:{expression})" for expression in unique))
