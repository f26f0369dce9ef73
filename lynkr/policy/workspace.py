"""Where a path really points, and whether it lies inside the workspace.

Rules (the original lynkr's jail was a string-prefix test, which
`/work/root-evil` passes for `/work/root`):

- `~` and `~user` are expanded, a relative path starts at the working directory;
- the result is resolved as the kernel would resolve it, so `..` and every
  symlink on the way (including a final symlink or a dangling one) are followed;
- "inside the workspace" means `commonpath([root, path]) == root` on resolved
  paths, so `/work/root-evil` is not inside `/work/root`.

The rules ask the operating system three things, and only through a
`WorkspaceLike` object: what a path resolves to (`realpath`), where a user's
home is (`user_home`) and what a wildcard matches (`glob`). So the evaluator is a
pure function of the policy, the call and that object: `Workspace` answers
from the disk (the default, and what every caller passes), a test's fake
answers from memory. Nothing is ever opened, read or written.
"""

from __future__ import annotations

import glob
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Workspace", "WorkspaceLike", "expand_user", "inside", "real_root", "resolve"]


class WorkspaceLike(Protocol):
    """A workspace as the path rules see it: where it is, and the system's view of paths.

    `root` and `cwd` are as given (resolved on use); each method is one kind of
    look-up that a disk answers, so nothing else in `lynkr.policy` touches one.
    """

    @property
    def root(self) -> str: ...

    @property
    def cwd(self) -> str | None: ...

    def realpath(self, path: str) -> str:
        """`path` made absolute with `..` and every symlink on the way followed (even
        a dangling final one), as the kernel would follow them."""
        ...

    def user_home(self, user: str) -> str | None:
        """The home directory of `user` (`""`: the tools' own user); None if there is none."""
        ...

    def glob(self, pattern: str, root_dir: str) -> Iterator[str]:
        """What `pattern` (`*`, `?`, `[…]`; hidden names only when spelled with a dot)
        matches, as the shell would expand it from `root_dir`: relative to it, or
        absolute for an absolute pattern. Lazily: a caller may stop early."""
        ...


def resolve(workspace: WorkspaceLike, path: str, *, cwd: str | None = None) -> str:
    """The real absolute path `path` names, from `cwd` (default: the workspace's)."""
    base = cwd or workspace.cwd or workspace.root
    return workspace.realpath(posixpath.join(base, expand_user(workspace, path)))


def expand_user(workspace: WorkspaceLike, path: str) -> str:
    """`~` → home, `~user` → that user's home (as the shell would expand it)."""
    if not path.startswith("~"):
        return path
    head, _, rest = path[1:].partition("/")
    home = workspace.user_home(head)
    if home is None:
        return "/nonexistent-user-home/" + head  # unknown user: surely outside
    return posixpath.join(home, rest) if rest else home


def real_root(workspace: WorkspaceLike) -> str:
    """The workspace root, resolved."""
    return workspace.realpath(workspace.root)


def inside(path: str, root: str) -> bool:
    """`path` is `root` or below it; both absolute and resolved. Not a string-prefix test."""
    try:
        return posixpath.commonpath([root, path]) == root
    except ValueError:  # one relative, one absolute
        return False


@dataclass(frozen=True, slots=True)
class Workspace:
    """The directory tools are confined to, on this machine's disk (a `WorkspaceLike`).

    `root` and `cwd` are kept as given and resolved on use; `home` is what `~`
    means (the agent passes the tools' home, tests pass a temporary one).
    Every method reads the file system (symlinks, directory listings) or the
    user database; callers on an event loop run the evaluator in a thread.
    """

    root: str
    cwd: str | None = None
    home: str | None = None

    # The look-ups of `WorkspaceLike`.

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def user_home(self, user: str) -> str | None:
        if user == "":
            return self.home if self.home is not None else os.path.expanduser("~")
        home = os.path.expanduser("~" + user)
        return None if home.startswith("~") else home

    def glob(self, pattern: str, root_dir: str) -> Iterator[str]:
        return glob.iglob(pattern, root_dir=root_dir)

    # What the agent's tools ask (`lynkr.agent.tools.base.resolve_path`).

    @property
    def real_root(self) -> str:
        return real_root(self)

    def resolve(self, path: str, *, cwd: str | None = None) -> str:
        """The real absolute path `path` names, from `cwd` (default: the workspace's)."""
        return resolve(self, path, cwd=cwd)

    def contains(self, resolved: str) -> bool:
        """Is the resolved path the root itself or below it?"""
        return inside(resolved, self.real_root)

    def relative(self, resolved: str) -> str:
        """`resolved` relative to the root, `/`-separated (`.` for the root)."""
        return posixpath.relpath(resolved, self.real_root)
