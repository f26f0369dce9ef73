"""The repo index on real code nobody here wrote: Django's sdist and Python's standard library.

    .venv/bin/python benchmarks/repoindex.py [--json out.json]

Django 5.2.20's source comes from PyPI (`pip download --no-deps --no-binary :all:`,
cached in `benchmarks/.cache/`; without a registry it is skipped, and the reason
printed); the standard library is the running interpreter's. For each tree, in a
fresh temporary copy: a cold build (the pool of worker processes), a refresh
with nothing changed, a refresh after one edit (10 edits of different files,
p50), the same with the edited file named (`paths=`: what lynkr does when it
sees an edit go by, no sweep), 1,000 symbol lookups of names the index holds
(p50/p99), the file's size.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lynkr.repoindex import IndexDB, build

CACHE = Path(__file__).resolve().parent / ".cache"
DJANGO = "django==5.2.20"


def django_tree() -> Path | str:
    """Django's unpacked sdist, or why it is not available."""
    CACHE.mkdir(exist_ok=True)
    archives = sorted(CACHE.glob("django-5.2.20.tar.gz"))
    if not archives:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             DJANGO, "-d", str(CACHE), "-q"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        archives = sorted(CACHE.glob("django-5.2.20.tar.gz"))
        if done.returncode != 0 or not archives:
            return f"pip download {DJANGO} failed: {done.stderr.strip()[-300:]}"
    tree = CACHE / "django-5.2.20"
    if not tree.exists():
        with tarfile.open(archives[0]) as archive:
            archive.extractall(CACHE, filter="data")
    return tree


def measure(name: str, source: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / name
        shutil.copytree(source, root, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        db = Path(folder) / "index.sqlite3"
        cold = build(root, db)
        same = [build(root, db).seconds for _ in range(5)]
        index = IndexDB(db)
        run = index.connection.execute
        python_sql = "SELECT path FROM files WHERE language = 'python' ORDER BY path"
        python_files = [p for (p,) in run(python_sql).fetchall()]
        names = [n for (n,) in run("SELECT DISTINCT name FROM symbols ORDER BY name").fetchall()]
        index.close()
        rng = random.Random(7)
        edits, told = [], []
        for path in rng.sample(python_files, 20):
            target = root / path
            target.write_text(target.read_text() + "\n\ndef _benchmark_edit():\n    pass\n")
            if len(edits) < 10:
                edits.append(build(root, db).seconds)  # found by the sweep
            else:
                told.append(build(root, db, paths=[path]).seconds)  # named by the edit
        index = IndexDB(db)
        lookups = []
        for query in rng.choices(names, k=1000):
            started = time.perf_counter()
            index.symbols(query, limit=20)
            lookups.append(time.perf_counter() - started)
        index.close()
        lookups.sort()
        return {
            "tree": name,
            "files": cold.files,
            "languages": cold.languages,
            "symbols": cold.symbols,
            "references": cold.references,
            "cold_s": cold.seconds,
            "no_change_ms": round(statistics.median(same) * 1000, 1),
            "one_edit_p50_ms": round(statistics.median(edits) * 1000, 1),
            "one_edit_named_p50_ms": round(statistics.median(told) * 1000, 1),
            "lookup_p50_ms": round(statistics.median(lookups) * 1000, 3),
            "lookup_p99_ms": round(lookups[int(len(lookups) * 0.99)] * 1000, 3),
            "db_mb": round(db.stat().st_size / 1e6, 1),
            "skipped": cold.skipped,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    trees: list[tuple[str, Path]] = []
    django = django_tree()
    if isinstance(django, str):
        print(f"Django skipped: {django}", file=sys.stderr)
    else:
        trees.append(("django-5.2.20", django))
    trees.append(
        ("stdlib-" + sysconfig.get_python_version(), Path(sysconfig.get_paths()["stdlib"]))
    )
    rows = [measure(name, path) for name, path in trees]
    print("| tree | files | symbols | references | cold | no change | one edit p50 "
          "| one edit, named p50 | lookup p50 | p99 | index |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tree']} | {r['files']:,} | {r['symbols']:,} | {r['references']:,} "
              f"| {r['cold_s']:.2f} s | {r['no_change_ms']} ms | {r['one_edit_p50_ms']} ms "
              f"| {r['one_edit_named_p50_ms']} ms "
              f"| {r['lookup_p50_ms']} ms | {r['lookup_p99_ms']} ms "
              f"| {r['db_mb']} MB |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
