"""Which files of a tree the index reads, and why the others are skipped.

`.gitignore` files are honoured at every level (dulwich's `IgnoreFilterManager`,
no git binary needed); directories that hold other people's or generated code
(`node_modules`, `vendor`, `dist`, virtualenvs…) are not entered; a file is
skipped when it is over 1 MB, binary (a NUL byte in its first 8 KB), minified
(one line of thousands of characters), unreadable, or not a regular file.
Directory symlinks are not followed (no loops); file symlinks are, when they
stay inside the tree. Each skip is counted by reason for the build's report.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lynkr.repoindex.languages import language_of

__all__ = ["MAX_FILE_BYTES", "SKIPPED_DIRECTORIES", "Found", "Walk", "sniff"]

MAX_FILE_BYTES = 1024 * 1024
_SNIFF_BYTES = 8192
_MINIFIED_LINE = 2000
SKIPPED_DIRECTORIES = frozenset(
    {".git", ".hg", ".svn", "node_modules", "vendor", "third_party", "dist", "build",
     "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".ruff_cache",
     ".pytest_cache", "target", ".lynkr", ".idea", ".gradle", "site-packages"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Found:
    """A file the index may read: its path relative to the root, language, size, mtime."""

    path: str
    language: str
    size: int
    mtime_ns: int


@dataclass(slots=True)
class Walk:
    """One sweep of a tree: the files found, and how many were skipped for each reason."""

    root: Path
    skipped: Counter[str] = field(default_factory=Counter)

    def files(self) -> Iterator[Found]:
        """Every file worth reading (`os.scandir`: one stat per entry, none repeated;
        `.gitignore` matching only below a directory that has one)."""
        from dulwich.ignore import IgnoreFilterManager

        ignored = IgnoreFilterManager(str(self.root), [], False)
        root_real = os.path.realpath(self.root)
        yield from self._directory(str(self.root), "", ignored, root_real, False)

    def only(self, paths: set[str]) -> Iterator[Found]:
        """Of `paths` (relative, `/`-separated), those a full sweep would find."""
        from dulwich.ignore import IgnoreFilterManager

        ignored = IgnoreFilterManager(str(self.root), [], False)
        root_real = os.path.realpath(self.root)
        for path in sorted(paths):
            parts = path.split("/")
            if path.startswith("../") or any(
                part in SKIPPED_DIRECTORIES or part.endswith(".egg-info") for part in parts[:-1]
            ):
                continue
            if any(
                ignored.is_ignored("/".join(parts[: i + 1]) + "/") for i in range(len(parts) - 1)
            ):
                continue
            full = self.root / path
            entry = _entry(full)
            if entry is None:
                continue  # gone (the caller removes it) or unreadable
            found = self._file(entry, path, ignored, root_real)
            if found is not None:
                yield found

    def _directory(
        self, directory: str, prefix: str, ignored: Any, root_real: str, inherited: bool
    ) -> Iterator[Found]:
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)  # any order: the index does not depend on it
        except OSError:
            self.skipped["unreadable"] += 1
            return
        # Below a directory holding a .gitignore, every path is matched; elsewhere none is.
        matching = inherited or any(e.name == ".gitignore" for e in entries)
        for entry in entries:
            path = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if self._enter(entry, path, ignored if matching else None):
                        yield from self._directory(entry.path, path + "/", ignored, root_real,
                                                   matching)  # fmt: skip
                    continue
                if entry.is_symlink() and entry.is_dir():  # not followed: no loops
                    self.skipped["directory symlink"] += 1
                    continue
            except OSError:
                self.skipped["unreadable"] += 1
                continue
            found = self._file(entry, path, ignored if matching else None, root_real)
            if found is not None:
                yield found

    def _enter(self, entry: os.DirEntry[str], path: str, ignored: Any) -> bool:
        name = entry.name
        if name in SKIPPED_DIRECTORIES or name.endswith(".egg-info"):
            self.skipped["vendored or generated directory"] += 1
            return False
        if ignored is not None and ignored.is_ignored(path + "/"):
            self.skipped["ignored (.gitignore)"] += 1
            return False
        return True

    def _file(
        self, entry: os.DirEntry[str], path: str, ignored: Any, root_real: str
    ) -> Found | None:
        spec = language_of(entry.name)
        if spec is None:
            return None  # not a language the index reads: not even counted
        if ignored is not None and ignored.is_ignored(path):
            self.skipped["ignored (.gitignore)"] += 1
            return None
        try:
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if os.path.commonpath([real, root_real]) != root_real:
                    self.skipped["symlink out of the tree"] += 1
                    return None
            info = entry.stat()
        except (OSError, RuntimeError):  # a dangling or looping link, a vanished file
            self.skipped["unreadable"] += 1
            return None
        if not stat.S_ISREG(info.st_mode):
            self.skipped["not a regular file"] += 1
            return None
        if info.st_size > MAX_FILE_BYTES:
            self.skipped["over 1 MB"] += 1
            return None
        if ".min." in entry.name:
            self.skipped["minified"] += 1
            return None
        return Found(path, spec.name, info.st_size, info.st_mtime_ns)


def _entry(path: Path) -> os.DirEntry[str] | None:
    """The directory entry of `path` (what the sweep would have), or None."""
    try:
        with os.scandir(path.parent) as listing:
            return next((e for e in listing if e.name == path.name), None)
    except OSError:
        return None


def sniff(source: bytes) -> str | None:
    """Why the content is not worth parsing (binary, minified), or None."""
    if b"\x00" in source[:_SNIFF_BYTES]:
        return "binary"
    if (
        len(source) > _MINIFIED_LINE
        and max(map(len, source.split(b"\n", 50)[:50])) > _MINIFIED_LINE
    ):
        return "minified"
    return None
