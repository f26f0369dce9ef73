"""Where a path really points, and whether it lies inside the workspace.

Rules (the original lynkr's jail was a string-prefix test, which
`/work/root-evil` passes for `/work/root`):

- `~` and `~user` are expanded, a relative path starts at the working directory;
- the result is resolved with `os.path.realpath`, so `..` and every symlink on
  the way (including a final symlink or a dangling one) are followed as the
  kernel would follow them;
- "inside the workspace" means `os.path.commonpath([root, path]) == root` on
  resolved paths, so `/work/root-evil` is not inside `/work/root`.

The only I/O is `realpath` (which reads symlinks); nothing is opened.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

__all__ = ["Workspace", "inside"]


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
