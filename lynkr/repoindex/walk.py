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
        from dulwich.ignore import IgnoreFilterManager

        ignored = IgnoreFilterManager(str(self.root), [], False)
        for directory, subdirectories, names in os.walk(self.root, followlinks=False):
            relative = os.path.relpath(directory, self.root)
            prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
            subdirectories[:] = sorted(
                d for d in subdirectories if self._enter(directory, prefix + d, d, ignored)
            )
            for name in sorted(names):
                found = self._file(Path(directory) / name, prefix + name, ignored)
                if found is not None:
                    yield found

    def _enter(self, parent: str, path: str, name: str, ignored: object) -> bool:
        if name in SKIPPED_DIRECTORIES or name.endswith(".egg-info"):
            self.skipped["vendored or generated directory"] += 1
            return False
        if os.path.islink(os.path.join(parent, name)):
            self.skipped["directory symlink"] += 1
            return False
        if ignored.is_ignored(path + "/"):  # type: ignore[attr-defined]
            self.skipped["ignored (.gitignore)"] += 1
            return False
        return True

    def _file(self, full: Path, path: str, ignored: object) -> Found | None:
        spec = language_of(path)
        if spec is None:
            return None  # not a language the index reads: not even counted
        if ignored.is_ignored(path):  # type: ignore[attr-defined]
            self.skipped["ignored (.gitignore)"] += 1
            return None
        try:
            info = full.stat()
            if full.is_symlink() and not full.resolve().is_relative_to(self.root.resolve()):
                self.skipped["symlink out of the tree"] += 1
                return None
        except (OSError, RuntimeError):  # a dangling or looping link, a vanished file
            self.skipped["unreadable"] += 1
            return None
        if not stat.S_ISREG(info.st_mode):
            self.skipped["not a regular file"] += 1
            return None
        if info.st_size > MAX_FILE_BYTES:
            self.skipped["over 1 MB"] += 1
            return None
        if ".min." in full.name:
            self.skipped["minified"] += 1
            return None
        return Found(path, spec.name, info.st_size, info.st_mtime_ns)


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
