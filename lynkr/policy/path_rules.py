"""Paths: may a tool read (or write) the file a path names, under `files.*`?

`PathCheck` holds one call's path rules and where its relative paths start
(`cd` in a shell line adds starts). A path is checked, in order:

1. `/dev/null` and the standard streams are always writable;
2. `files.read_only` refuses every write;
3. with a workspace, the path is resolved as the kernel would (`~`, `..`,
   every symlink) and must lie inside the root (`files.workspace_only`, with
   `files.read_outside` for reads); without one, writes to system paths are
   refused, the rest is judged by name only;
4. `files.deny` and `files.deny_write` globs, on the path relative to the root
   and on the path as written.

A shell word with wildcards is also checked as every path it matches in the
workspace (a symlink could be among them); more than `MAX_GLOB` matches are
refused, since they cannot all be checked.

Every look-up (resolving, `~`, wildcards) goes through the context's
`WorkspaceLike`; this module itself touches no file system.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from lynkr.policy.decision import ToolContext
from lynkr.policy.globs import glob_matches
from lynkr.policy.model import Denial, Policy
from lynkr.policy.shell_words import Word, brace_variants
from lynkr.policy.workspace import expand_user, inside, real_root, resolve

__all__ = ["ALWAYS_WRITABLE", "MAX_GLOB", "PathCheck"]

ALWAYS_WRITABLE = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})


# Without a workspace, writes here are refused anyway.
_SYSTEM: tuple[str, ...] = ("/etc/**", "/usr/**", "/bin/**", "/sbin/**", "/boot/**", "/dev/**")
_SYSTEM += ("/sys/**", "/proc/**", "/lib/**", "/lib64/**", "/var/**", "/System/**", "/Library/**")
# A path no file can have (NUL): stands for "more matches than were checked".
_TOO_WIDE = "\0glob-too-wide"
MAX_GLOB = 1000


@dataclass
class PathCheck:
    """Path rules (`files.*`) for one call; `cwds` are where relative paths may start."""

    policy: Policy
    context: ToolContext
    cwd: str | None = None
    cwds: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cwd is not None and self.context.workspace is not None:
            self.cwds = [resolve(self.context.workspace, self.cwd)]
        else:
            self.cwds = [None]

    @cached_property
    def root(self) -> str:
        """The workspace root, resolved (once per call, not once per path)."""
        assert self.context.workspace is not None
        return real_root(self.context.workspace)

    def word(self, word: Word, *, write: bool, redirect: bool = False) -> Denial | None:
        """A shell word as a path: dynamic ones are refused when they could escape."""
        if word.dynamic:
            if redirect or write or "/" in word.text or word.text.startswith(("~", "$")):
                return Denial(
                    "files.dynamic_path",
                    f"the path {word.text!r} is only known when the line runs; write it literally",
                )
            return None
        for variant in brace_variants(word.text) if word.brace else [word.text]:
            for path in self.expand(variant, word.glob):
                denial = self.check(path, write=write)
                if denial:
                    return denial
        return None

    def expand(self, text: str, is_glob: bool) -> Iterator[str]:
        """`text`, or what its wildcards match in the workspace (a symlink could be among them)."""
        yield text
        workspace = self.context.workspace
        if not is_glob or workspace is None:
            return
        for start in self.cwds:
            base = start or resolve(workspace, ".")
            pattern = expand_user(workspace, text)
            for index, match in enumerate(workspace.glob(pattern, base)):
                if index >= MAX_GLOB:
                    yield _TOO_WIDE  # unchecked matches must not pass: deny instead
                    break
                yield posixpath.join(base, match)

    def check(self, path: str, *, write: bool) -> Denial | None:
        """The `files.*` rule `path` breaks when read (or written), or None."""
        if path == _TOO_WIDE:
            return Denial(
                "files.glob_too_wide",
                f"a wildcard matches more than {MAX_GLOB} paths; they cannot all be checked, "
                "so the command is refused — name the files, or narrow the pattern",
            )
        rules = self.policy.files
        if write and posixpath.normpath(path) in ALWAYS_WRITABLE:
            return None
        if write and rules.read_only:
            return Denial(
                "files.read_only",
                f"writing {path!r} is refused: this policy is read-only (files.read_only: true)",
            )
        workspace = self.context.workspace
        if workspace is None:
            return self.lexical(path, write=write)
        for start in self.cwds:
            denial = self.resolved(path, resolve(workspace, path, cwd=start), write=write)
            if denial:
                return denial
        return None

    def resolved(self, path: str, real: str, *, write: bool) -> Denial | None:
        rules = self.policy.files
        if write and real in ALWAYS_WRITABLE:
            return None
        within = inside(real, self.root)
        if not within and rules.workspace_only:
            readable = not write and glob_matches(rules.read_outside, real)
            if not readable:
                return Denial(
                    "files.workspace_only",
                    f"{path!r} is outside the workspace (after resolving '..', '~' and "
                    "symlinks); tools may only use paths inside it"
                    + ("" if write else " (or list it in files.read_outside)"),
                )
        names = {posixpath.relpath(real, self.root) if within else real, posixpath.normpath(path)}
        return self.globs(path, names, write=write)

    def lexical(self, path: str, *, write: bool) -> Denial | None:
        normal = posixpath.normpath(path)
        if write and normal in ALWAYS_WRITABLE:
            return None
        if write and normal.startswith("/") and glob_matches(_SYSTEM, normal):
            return Denial("files.system_path", f"writing {path!r} (a system path) is refused")
        return self.globs(path, {normal}, write=write)

    def globs(self, path: str, names: set[str], *, write: bool) -> Denial | None:
        rules = self.policy.files
        for name in names:
            hit = glob_matches(rules.deny, name)
            if hit:
                return Denial("files.deny", f"{path!r} matches files.deny {hit!r}")
            hit = glob_matches(rules.deny_write, name) if write else None
            if hit:
                return Denial(
                    "files.deny_write", f"writing {path!r} matches files.deny_write {hit!r}"
                )
        return None

    def change_directory(self, args: Sequence[Word]) -> Denial | None:
        """`cd DIR`: DIR must be allowed, and later relative paths may start there too."""
        targets = [w for w in args if not w.text.startswith("-") or w.text == "-"]
        if not targets or targets[0].text == "-":
            if self.context.workspace is None:
                return None
            return Denial(
                "files.workspace_only",
                "`cd` without a directory (or `cd -`) leaves the workspace; name the directory",
            )
        denial = self.word(targets[0], write=False, redirect=True)
        if denial is None and self.context.workspace is not None:
            workspace = self.context.workspace
            self.cwds += [resolve(workspace, targets[0].text, cwd=c) for c in self.cwds]
        return denial
