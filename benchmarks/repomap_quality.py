"""How well the repo map points at the files a change touches: recall@10 against history.

    .venv/bin/python benchmarks/repomap_quality.py [--repo DIR] [--limit N]

A localisation set from a real repository's history (by default this one: the
only git history on this machine without a network): every commit that is not a
merge and changed 1–8 indexed files that still exist gives its message (the
question) and those files (the answer). Both rankings read the index of today's
tree (so they know a little of the future: the same for both), and are judged by
recall@10 — the share of a commit's files among the first ten:

* lexical — files ranked by how many of the message's keywords their text holds;
* map — the repo map's ranking, personalised by the message: the names it
  mentions that the index defines, and the files whose name it mentions.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dulwich.repo import Repo

from lynkr.repoindex import IndexDB, build
from lynkr.repoindex.rank import Definition, file_ranks

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_STOP = set(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "when",
        "are",
        "not",
        "but",
        "its",
        "one",
        "all",
        "new",
        "now",
        "into",
    ]
)


def commits(repo_path: Path, indexed: set[str], limit: int) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    with Repo(str(repo_path)) as repo:
        _walk(repo, indexed, limit, found)
    return found


def _walk(repo: Repo, indexed: set[str], limit: int, found: list[tuple[str, list[str]]]) -> None:
    for entry in repo.get_walker(max_entries=2000):
        commit = entry.commit
        if len(commit.parents) != 1:
            continue
        changed = {path for change in entry.changes() if (path := _path_of(change))}
        files = sorted(changed & indexed)
        if 1 <= len(files) <= 8:
            found.append((commit.message.decode("utf-8", "replace"), files))
        if len(found) >= limit:
            break


def _path_of(change: object) -> str | None:
    if isinstance(change, list):  # a merge's per-parent changes: merges are skipped anyway
        return None
    for side in (getattr(change, "new", None), getattr(change, "old", None)):
        if side is not None and side.path:
            return str(side.path.decode())
    return None


def words(message: str) -> list[str]:
    return [w for w in dict.fromkeys(_WORD.findall(message)) if w.lower() not in _STOP]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--limit", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "index.sqlite3"
        build(args.repo, db_path)
        db = IndexDB(db_path)
        run = db.connection.execute
        symbols_sql = ("SELECT f.path, s.line, s.name, s.kind, s.signature FROM symbols s"
                       " JOIN files f ON f.id = s.file_id")  # fmt: skip
        definitions = [Definition(str(p), int(line), str(n), str(k), str(sig))
                       for p, line, n, k, sig in run(symbols_sql).fetchall()]  # fmt: skip
        references = [(str(p), str(n), int(c)) for p, n, c in run(
            "SELECT f.path, r.name, count(*) FROM refs r JOIN files f ON f.id = r.file_id"
            " GROUP BY f.path, r.name").fetchall()]  # fmt: skip
        paths = sorted({str(p) for (p,) in run("SELECT path FROM files").fetchall()})
        db.close()
    texts = {p: (args.repo / p).read_text(errors="replace").lower() for p in paths}
    names = {d.name for d in definitions}
    stems = {Path(p).stem.lower(): p for p in paths}
    cases = commits(args.repo, set(paths), args.limit)
    baseline, _ = file_ranks(definitions, references)  # nothing mentioned: the hubs
    lexical: list[float] = []
    mapped: list[float] = []
    mixed: list[float] = []
    lift: list[float] = []
    for message, files in cases:
        terms = words(message)
        lowered = [t.lower() for t in terms]
        by_words = sorted(paths, key=lambda p: (-sum(t in texts[p] for t in lowered), p))
        focus_names = [t for t in terms if t in names]
        focus_files = [stems[t] for t in lowered if t in stems]
        rank, _ = file_ranks(definitions, references, mentioned_files=focus_files,
                             mentioned_names=focus_names)  # fmt: skip
        by_map = sorted(paths, key=lambda p: (-rank.get(p, 0.0), p))
        weights = {p: float(sum(t in texts[p] for t in lowered)) for p in by_words[:20]}
        blended, _ = file_ranks(definitions, references, mentioned_files=focus_files,
                                mentioned_names=focus_names, file_weights=weights)  # fmt: skip
        by_blend = sorted(paths, key=lambda p: (-blended.get(p, 0.0), p))
        # lift: how much the conversation raised a file's rank (hubs rank high either way)
        lifted = sorted(paths, key=lambda p: (-blended.get(p, 0.0) / baseline.get(p, 1.0), p))
        lift.append(len(set(lifted[:10]) & set(files)) / len(files))
        lexical.append(len(set(by_words[:10]) & set(files)) / len(files))
        mapped.append(len(set(by_map[:10]) & set(files)) / len(files))
        mixed.append(len(set(by_blend[:10]) & set(files)) / len(files))
    print(f"{len(cases)} commits of {args.repo.name}, {len(paths)} indexed files\n")
    rows = [
        ("lexical (message keywords in the file)", lexical),
        ("repo map, personalised by the message's names and files", mapped),
        ("repo map, personalised by those and the lexical top 20", mixed),
        ("the same, ranked by lift over the unpersonalised rank", lift),
    ]
    print("| ranking | recall@10 |\n|---|---|")
    for label, values in rows:
        print(f"| {label} | {statistics.mean(values):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
