"""`lynkr index …`: build the repo index of a tree and look things up in it.

PATH defaults to `.`; the index lives in `PATH/.lynkr/index.sqlite3` unless
`--db` says otherwise. `build` shows a progress bar on a terminal (tqdm) and
prints what it did; every lookup takes `--format json` (paths relative to
PATH, lines and columns 1-based).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_index_parser", "index_command"]


def add_index_parser(commands: Any) -> None:
    index = commands.add_parser("index", help="the repo index: symbols, references, imports")
    actions = index.add_subparsers(dest="index_command")

    def command(name: str, help_text: str, *, path_optional: bool = False) -> Any:
        parser = actions.add_parser(name, help=help_text)
        if path_optional:
            parser.add_argument("path", nargs="?", default=".", help="the tree (default .)")
        else:
            parser.add_argument("path", help="the tree the index is of")
        parser.add_argument("--db", help="the index file (default PATH/.lynkr/index.sqlite3)")
        parser.add_argument("--format", choices=("text", "json"), default="text")
        return parser

    build = command("build", "build or refresh the index (only what changed is read)",
                    path_optional=True)  # fmt: skip
    build.add_argument("--workers", type=int, help="processes for a cold build (default ≤ 4)")
    symbols = command("symbols", "definitions whose name matches QUERY, best first")
    symbols.add_argument("query")
    symbols.add_argument("--kind", help="only this kind: function, class, method, …")
    symbols.add_argument("--limit", type=int, default=20)
    refs = command("refs", "where NAME is used (calls, types, …)")
    refs.add_argument("name")
    outline = command("outline", "the definitions of one FILE, in order")
    outline.add_argument("file", help="a path relative to PATH")
    watch = command("watch", "build, then refresh each file as it changes (Ctrl-C stops)",
                    path_optional=True)  # fmt: skip
    watch.add_argument("--workers", type=int, help="processes for a cold build (default ≤ 4)")
    notes = command("claude-md", "write the project's facts into CLAUDE.md (between markers)",
                    path_optional=True)  # fmt: skip
    notes.add_argument(
        "--beside",
        action="store_true",
        help="a CLAUDE.md without lynkr's markers: write CLAUDE.lynkr.md instead",
    )
    repo_map = command("map", "the most important definitions, fitted to a token budget")
    repo_map.add_argument("--tokens", type=int, default=1024)
    repo_map.add_argument("--focus", nargs="*", default=[], metavar="FILE|SYMBOL",
                          help="files or names the conversation is about")  # fmt: skip


def index_command(args: Any) -> int:
    """Run `lynkr index <subcommand>`; 0 done, 1 nothing found, 2 bad arguments."""
    if args.index_command is None:
        print("lynkr index: say what to do: build, watch, symbols, refs, outline, map, claude-md",
              file=sys.stderr)  # fmt: skip
        return 2
    root = Path(args.path)
    if not root.is_dir():
        print(f"lynkr index: {root} is not a directory", file=sys.stderr)
        return 2
    db_path = Path(args.db) if args.db else None
    if args.index_command == "build":
        return _build(root, db_path, args)
    if args.index_command == "claude-md":
        return _notes(root, db_path, args)
    if args.index_command == "watch":
        return _watch(root, db_path, args)
    from lynkr.repoindex import IndexDB, index_path

    location = db_path or index_path(root.resolve())
    if not location.exists():
        print(f"lynkr index: no index at {location}; run `lynkr index build {root}` first",
              file=sys.stderr)  # fmt: skip
        return 2
    db = IndexDB(location)
    try:
        if args.index_command == "map":
            from lynkr.repoindex.repomap import repo_map

            text = repo_map(db, tokens=args.tokens, focus=args.focus)
            print(json.dumps({"map": text}) if args.format == "json" else text, end="")
            return 0 if text else 1
        if args.index_command == "symbols":
            rows = [h.as_dict() for h in db.symbols(args.query, kind=args.kind, limit=args.limit)]
        elif args.index_command == "refs":
            rows = [h.as_dict() for h in db.references(args.name)]
        else:
            rows = [h.as_dict() for h in db.outline(Path(args.file).as_posix())]
    finally:
        db.close()
    _print(rows, args.format, args.index_command)
    return 0 if rows else 1


def _build(root: Path, db_path: Path | None, args: Any) -> int:
    from lynkr.repoindex import build

    bar: Any = None
    progress = None
    if sys.stderr.isatty() and args.format == "text":
        from tqdm import tqdm  # type: ignore[import-untyped]

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None and total:
                bar = tqdm(total=total, unit="file", desc="indexing", leave=False)
            if bar is not None:
                bar.update(done - bar.n)

    try:
        report = build(root, db_path, workers=args.workers, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    data = report.as_dict()
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return 0
    languages = ", ".join(f"{k} {v}" for k, v in report.languages.items()) or "none"
    print(f"{report.files} files ({languages}), {report.symbols} symbols, "
          f"{report.references} references, {report.imports} imports in {report.seconds:.2f} s"
          f" — {report.parsed} parsed, {report.unchanged} unchanged, {report.removed} removed"
          + (" (cold build)" if report.cold else ""))  # fmt: skip
    if report.skipped:
        print("skipped: " + ", ".join(f"{n} {why}" for why, n in report.skipped.items()))
    return 0


def _watch(root: Path, db_path: Path | None, args: Any) -> int:
    """Build once, then refresh exactly the files watchfiles reports (no sweep)."""
    import watchfiles

    from lynkr.repoindex import build

    report = build(root, db_path, workers=args.workers)
    index = str((db_path or root / ".lynkr" / "index.sqlite3").resolve())  # and its -wal, -shm
    ready = False
    try:
        # yield_on_timeout: the first (empty) round says the watch is in place.
        for changes in watchfiles.watch(root, debounce=200, step=50, rust_timeout=300,
                                        yield_on_timeout=True):  # fmt: skip
            if not ready:
                ready = True
                print(f"watching {root}: {report.files} files, {report.symbols} symbols",
                      flush=True)  # fmt: skip
            paths = sorted({p for _, p in changes if not p.startswith(index)})
            if not paths:
                continue
            done = build(root, db_path, paths=paths)
            print(f"{len(paths)} changed: {done.parsed} parsed, {done.removed} removed "
                  f"in {done.seconds * 1000:.0f} ms", flush=True)  # fmt: skip
    except KeyboardInterrupt:
        pass
    return 0


def _notes(root: Path, db_path: Path | None, args: Any) -> int:
    from lynkr.repoindex import IndexDB, build, index_path
    from lynkr.repoindex.notes import facts_of, render, write_notes

    report = build(root, db_path)
    db = IndexDB(db_path or index_path(root.resolve()))
    try:
        central = db.most_imported()
    finally:
        db.close()
    block = render(facts_of(root, report.languages, central))
    target, what = write_notes(root, block, beside=args.beside)
    if args.format == "json":
        print(json.dumps({"file": str(target), "result": what, "bytes": len(block.encode())}))
    else:
        print(f"{what}: {target} ({len(block.splitlines())} lines from lynkr)")
    return 0


def _print(rows: list[dict[str, Any]], output: str, command: str) -> None:
    if output == "json":
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        if command == "refs":
            print(f"{row['path']}:{row['line']}:{row['column']}  {row['kind']} {row['name']}")
        else:
            parent = f" (in {row['parent']})" if row.get("parent") else ""
            print(f"{row['path']}:{row['line']}:{row['column']}  {row['kind']:<9} "
                  f"{row['signature']}{parent}")  # fmt: skip
    if not rows:
        print("nothing found", file=sys.stderr)
