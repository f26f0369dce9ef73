"""Building and refreshing the index: a stat sweep, hashes only where a stat changed,
parses only where a hash changed, a process pool only for a cold build.

`build(root)` compares the sweep with the stored snapshot: a file whose size
and mtime are unchanged is not read; one whose stat changed is hashed, and
parsed again only when its content really changed (a `touch` costs a read,
not a parse); stored files no longer found are removed (a rename is a remove
and an add). A cold build (nothing stored) of many files parses in
`min(cpu, 4)` worker processes — tree-sitter's parse holds the GIL — and a
refresh stays in this process. Everything is written in one transaction, so a
reader sees the old index or the new one, never half of each.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lynkr.repoindex.languages import LANGUAGES, grammar
from lynkr.repoindex.resolve import resolve_import
from lynkr.repoindex.store import IndexDB, versions_of
from lynkr.repoindex.tags import FileTags, Rows, extract, markdown_tags
from lynkr.repoindex.walk import Found, Walk, sniff
from lynkr.stores.sqlite import transaction

__all__ = ["DEFAULT_INDEX", "BuildReport", "build", "index_path"]

DEFAULT_INDEX = Path(".lynkr") / "index.sqlite3"
_POOL_FROM = 200  # files to parse before a pool of processes pays for its start
_CHUNK = 64

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class BuildReport:
    files: int = 0
    symbols: int = 0
    references: int = 0
    imports: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    parsed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    cold: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def index_path(root: Path) -> Path:
    return root / DEFAULT_INDEX


def build(
    root: str | Path,
    db_path: str | Path | None = None,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    paths: Sequence[str] | None = None,
) -> BuildReport:
    """Bring the index of `root` up to date; returns what it did.

    With `paths` (relative to `root`: the files an editor or a tool call just wrote),
    only those are looked at — no sweep of the tree — unless the index is cold.
    """
    started = time.perf_counter()
    root = Path(root).resolve()
    db = IndexDB(db_path or index_path(root))
    try:
        report = BuildReport()
        report.cold = db.reset_unless(versions_of(_grammar_versions()))
        stored = db.files()
        report.cold = report.cold or not stored
        walk = Walk(root)
        if paths is not None and not report.cold:
            wanted = {_relative(root, path) for path in paths}
            found = list(walk.only(wanted))
            gone = (wanted & set(stored)) - {f.path for f in found}
        else:
            found = list(walk.files())
            gone = set(stored) - {f.path for f in found}
        changed = [f for f in found if _stat_changed(f, stored)]
        report.unchanged = len(found) - len(changed)
        results = _parse_all(root, changed, stored, workers, progress, cold=report.cold)
        skipped: Counter[str] = Counter(walk.skipped)
        parsed_ids: list[int] = []
        with transaction(db.connection):
            db.remove(gone)
            for item, (digest, tags, why) in zip(changed, results, strict=True):
                if why is not None:
                    skipped[why] += 1
                    db.remove([item.path])
                elif tags is None:  # the same bytes as stored: only the stat moved
                    db.touch(stored[item.path].id, item.size, item.mtime_ns)
                    report.unchanged += 1
                else:
                    parsed_ids.append(
                        db.put(item.path, item.language, item.size, item.mtime_ns, digest, tags)
                    )
                    report.parsed += 1
            added = any(item.path not in stored for item in changed)
            if parsed_ids or gone:
                db.resolve_imports(resolve_import, parsed_ids, unresolved_too=bool(gone) or added)
        report.removed = len(gone)
        report.skipped = dict(sorted(skipped.items()))
        counts = db.counts()
        report.files, report.symbols = counts["files"], counts["symbols"]
        report.references, report.imports = counts["references"], counts["imports"]
        report.languages = counts["languages"]
        report.seconds = round(time.perf_counter() - started, 3)
        return report
    finally:
        db.close()


def _relative(root: Path, path: str) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        candidate = Path(os.path.relpath(candidate, root))
    return candidate.as_posix()


def _grammar_versions() -> dict[str, str]:
    versions = {}
    for spec in LANGUAGES:
        loaded = grammar(spec.name)
        versions[spec.name] = loaded.version if loaded else "missing"
    return versions


def _stat_changed(found: Found, stored: dict[str, Any]) -> bool:
    known = stored.get(found.path)
    return known is None or (known.size, known.mtime_ns) != (found.size, found.mtime_ns)


# (hash, the tags' rows or None when the bytes are unchanged, why it was skipped)
Result = tuple[str, Rows | None, str | None]


def _parse_all(
    root: Path,
    changed: Sequence[Found],
    stored: dict[str, Any],
    workers: int | None,
    progress: Progress | None,
    *,
    cold: bool,
) -> list[Result]:
    jobs = [(str(root), f.path, f.language, getattr(stored.get(f.path), "hash", None))
            for f in changed]  # fmt: skip
    total = len(jobs)
    if progress is not None:
        progress(0, total)
    count = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if not cold or total < _POOL_FROM or count <= 1:
        results = []
        for job in jobs:
            results.append(parse_file(*job))
            if progress is not None:
                progress(len(results), total)
        return results
    results = []
    with ProcessPoolExecutor(max_workers=count) as pool:
        for result in pool.map(_parse_job, jobs, chunksize=_CHUNK):
            results.append(result)
            if progress is not None and (len(results) % _CHUNK == 0 or len(results) == total):
                progress(len(results), total)
    return results


def _parse_job(job: tuple[str, str, str, str | None]) -> Result:
    return parse_file(*job)


def parse_file(root: str, path: str, language: str, known_hash: str | None) -> Result:
    """Read, hash and (when the hash is new) parse one file; never raises."""
    try:
        source = (Path(root) / path).read_bytes()
    except OSError:
        return "", None, "unreadable"
    digest = hashlib.blake2b(source, digest_size=16).hexdigest()
    if digest == known_hash:
        return digest, None, None
    why = sniff(source)
    if why is not None:
        return digest, None, why
    if language == "markdown":
        return digest, markdown_tags(source).rows(), None
    loaded = grammar(language)
    if loaded is None:
        tags = FileTags(lines=source.count(b"\n"), error=f"no grammar for {language}")
        return digest, tags.rows(), None
    try:
        return digest, extract(loaded, source).rows(), None
    except Exception as exc:  # a grammar bug must cost one file, not the build
        return digest, FileTags(error=f"{type(exc).__name__}: {exc}").rows(), None
