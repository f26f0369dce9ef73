"""Where a path really points, and whether a policy lets a tool touch it.

Rules (reliability-performance.md §5.2; the original's jail used a string
prefix, reference §7 and §16):

- `~` and `~user` are expanded, a relative path starts at the working directory;
- the result is resolved with `os.path.realpath`, so `..` and every symlink on
  the way (including a final symlink or a dangling one) are followed as the
  kernel would follow them;
- "inside the workspace" means `os.path.commonpath([root, path]) == root` on
  resolved paths, so `/work/root-evil` is not inside `/work/root`;
- `/dev/null` and the standard streams are always writable.

The only I/O is `realpath` (which reads symlinks); nothing is opened.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ALWAYS_WRITABLE", "Workspace", "glob_matches", "inside", "name_matches"]

ALWAYS_WRITABLE = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})


@dataclass(frozen=True, slots=True)
class Workspace:
    """The directory tools are confined to, and where relative paths start.

    `root` and `cwd` are kept as given and resolved on use; `home` is what `~`
    means (the agent passes the tools' home, tests pass a temporary one).
    """

    root: str
    cwd: str | None = None
    home: str | None = None

    @property
    def real_root(self) -> str:
        return os.path.realpath(self.root)

    def resolve(self, path: str, *, cwd: str | None = None) -> str:
        """The real absolute path `path` names, from `cwd` (default: the workspace's)."""
        expanded = self.expand_user(path)
        base = cwd or self.cwd or self.root
        return os.path.realpath(os.path.join(base, expanded))

    def expand_user(self, path: str) -> str:
        """`~` → home, `~user` → that user's home (as the shell would expand it)."""
        if not path.startswith("~"):
            return path
        head, _, rest = path[1:].partition("/")
        if head == "":
            home = self.home if self.home is not None else os.path.expanduser("~")
        else:
            home = os.path.expanduser("~" + head)
            if home.startswith("~"):
                return "/nonexistent-user-home/" + head  # unknown user: surely outside
        return posixpath.join(home, rest) if rest else home

    def contains(self, resolved: str) -> bool:
        """Is the resolved path the root itself or below it?"""
        return inside(resolved, self.real_root)

    def relative(self, resolved: str) -> str:
        """`resolved` relative to the root, `/`-separated (`.` for the root)."""
        return posixpath.relpath(resolved, self.real_root)


def inside(path: str, root: str) -> bool:
    """`path` is `root` or below it; both absolute and resolved. Not a string-prefix test."""
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:  # one relative, one absolute; or different drives
        return False


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
