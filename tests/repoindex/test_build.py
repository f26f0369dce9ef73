"""The incremental build: only what changed is read, and a refresh always equals a fresh
build (a property test over random adds, edits, renames and deletes); the walk's skips."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lynkr.repoindex import IndexDB, build
from tests.repoindex.fixtures import FIXTURES


def snapshot(db_path: Path) -> dict[str, Any]:
    """Everything the index knows, without row ids (which differ between builds)."""
    db = IndexDB(db_path)
    try:
        run = lambda sql: sorted(tuple(r) for r in db.connection.execute(sql).fetchall())  # noqa: E731
        return {
            "files": run("SELECT path, language, size, hash, lines FROM files"),
            "symbols": run(
                "SELECT f.path, s.name, s.kind, s.line, s.col, s.end_line, s.signature, s.parent"
                " FROM symbols s JOIN files f ON f.id = s.file_id"
            ),
            "refs": run(
                "SELECT f.path, r.name, r.kind, r.line, r.col FROM refs r"
                " JOIN files f ON f.id = r.file_id"
            ),
            "imports": run(
                "SELECT f.path, i.target, i.line, t.path FROM imports i"
                " JOIN files f ON f.id = i.file_id LEFT JOIN files t ON t.id = i.resolved"
            ),
        }
    finally:
        db.close()


def write_fixtures(root: Path) -> None:
    for path, source in FIXTURES.values():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source)


def test_a_refresh_reads_only_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_fixtures(root)
    db = tmp_path / "index.sqlite3"
    first = build(root, db)
    assert first.cold and first.parsed == len(FIXTURES) == first.files
    assert set(first.languages) == set(FIXTURES)
    again = build(root, db)
    assert (again.cold, again.parsed, again.unchanged) == (False, 0, len(FIXTURES))
    models = root / "app/models.py"
    os.utime(models, ns=(1, 1))  # the stat moved, the bytes did not: read, not parsed
    touched = build(root, db)
    assert (touched.parsed, touched.unchanged) == (0, len(FIXTURES))
    models.write_bytes(models.read_bytes() + b"\n\ndef extra():\n    pass\n")
    edited = build(root, db)
    assert edited.parsed == 1
    assert [h.line for h in IndexDB(db).symbols("extra")] == [16]
    (root / "web/cart.js").rename(root / "web/basket.js")
    renamed = build(root, db)
    assert (renamed.parsed, renamed.removed) == (1, 1)
    assert [h.path for h in IndexDB(db).symbols("Cart")] == ["web/basket.js"]


def test_imports_resolve_to_files_of_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg/__init__.py").write_text("")
    (root / "pkg/base.py").write_text("class Model:\n    pass\n")
    (root / "pkg/models.py").write_text("from .base import Model\nimport pkg.base\nimport os\n")
    (root / "web").mkdir()
    (root / "web/price.ts").write_text("export function price() { return 1; }\n")
    (root / "web/cart.ts").write_text('import { price } from "./price.js";\n')
    db = tmp_path / "i.sqlite3"
    build(root, db)
    index = IndexDB(db)
    assert index.imports("pkg/models.py") == [
        (".base", 1, "pkg/base.py"), ("pkg.base", 2, "pkg/base.py"), ("os", 3, None)
    ]  # fmt: skip
    assert index.imports("web/cart.ts") == [("./price.js", 1, "web/price.ts")]
    index.close()


SNIPPETS = [*(source for _, source in list(FIXTURES.values())[:4]), b"x = 1\n", b""]
NAMES = ["a.py", "b.py", "pkg/c.py", "pkg/d.js", "e.ts", "f.go"]
operation = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(NAMES), st.sampled_from(range(len(SNIPPETS)))),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(range(len(NAMES)))),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.lists(operation, min_size=1, max_size=4), min_size=1, max_size=4))
def test_incremental_always_equals_a_fresh_build(
    tmp_path: Path, steps: list[list[tuple[str, str, int]]]
) -> None:
    root = tmp_path / "tree"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    incremental = tmp_path / "incremental.sqlite3"
    incremental.unlink(missing_ok=True)
    told = tmp_path / "told.sqlite3"  # refreshed from the paths written, never swept
    told.unlink(missing_ok=True)
    for batch in steps:
        written: list[str] = []
        for kind, name, value in batch:
            written.append(name)
            path = root / name
            if kind == "write":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(SNIPPETS[value])
            elif kind == "delete":
                path.unlink(missing_ok=True)
            elif path.exists():
                target = root / NAMES[value]
                target.parent.mkdir(parents=True, exist_ok=True)
                path.rename(target)
                written.append(NAMES[value])
        build(root, incremental, workers=1)
        build(root, told, workers=1, paths=written)
        fresh = tmp_path / "fresh.sqlite3"
        fresh.unlink(missing_ok=True)
        build(root, fresh, workers=1)
        assert snapshot(incremental) == snapshot(fresh)
        assert snapshot(told) == snapshot(fresh)


def test_a_hostile_tree_is_indexed_and_its_skips_reported(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_fixtures(root)
    (root / ".gitignore").write_text("generated/\n*.gen.py\n")
    (root / "generated").mkdir()
    (root / "generated/out.py").write_text("def hidden(): pass\n")
    (root / "skip.gen.py").write_text("def hidden(): pass\n")
    (root / "node_modules/lib").mkdir(parents=True)
    (root / "node_modules/lib/index.js").write_text("function vendored() {}\n")
    (root / "loop").symlink_to(root, target_is_directory=True)  # a symlink loop
    (root / "dangling.py").symlink_to(root / "nowhere.py")
    os.mkfifo(root / "pipe.py")
    (root / "bad_utf8.py").write_bytes(b"def caf\xe9():\n    return '\xff\xfe'\n")
    (root / "blob.py").write_bytes(b"x = 1\n\x00\x01\x02" * 10)
    (root / "app.min.js").write_text("var a=1;" * 10)
    with open(root / "huge.py", "wb") as huge:  # 50 MB, sparse: no time to write it
        huge.truncate(50 * 1024 * 1024)
    (root / "wide.js").write_text("var x = [" + "1," * 5000 + "];\n")
    report = build(root, tmp_path / "i.sqlite3")
    assert report.skipped == {
        "binary": 1,
        "directory symlink": 1,
        "ignored (.gitignore)": 2,
        "minified": 2,
        "not a regular file": 1,
        "over 1 MB": 1,
        "unreadable": 1,
        "vendored or generated directory": 1,
    }
    index = IndexDB(tmp_path / "i.sqlite3")
    assert not index.symbols("hidden") and not index.symbols("vendored")
    # invalid UTF-8: the file is indexed; the parser ends the name at the bad byte
    assert [(h.name, h.path, h.line) for h in index.symbols("caf")] == [("caf", "bad_utf8.py", 1)]
    index.close()


def test_a_cold_build_of_many_files_uses_the_pool_and_equals_one_process(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for n in range(230):  # past the size from which a pool of processes pays
        package = root / f"pkg{n % 7}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"mod{n}.py").write_text(
            f"from pkg0.mod0 import helper_0\n\ndef helper_{n}(x):\n    return helper_0(x)\n"
        )
    progress: list[tuple[int, int]] = []
    pooled = build(root, tmp_path / "pooled.sqlite3", workers=2,
                   progress=lambda done, total: progress.append((done, total)))  # fmt: skip
    alone = build(root, tmp_path / "alone.sqlite3", workers=1)
    assert pooled.cold and pooled.parsed == 230 == alone.parsed
    assert progress[0] == (0, 230) and progress[-1] == (230, 230)
    assert snapshot(tmp_path / "pooled.sqlite3") == snapshot(tmp_path / "alone.sqlite3")


def test_a_grammar_change_empties_the_index(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_fixtures(root)
    db = tmp_path / "i.sqlite3"
    build(root, db)
    index = IndexDB(db)
    index.connection.execute("UPDATE meta SET value = 'other' WHERE key = 'grammars'")
    index.close()
    again = build(root, db)
    assert again.cold and again.parsed == len(FIXTURES)


def test_the_dirty_plan() -> None:
    from lynkr.repoindex import dirty

    root = Path("/tmp/lynkr-dirty-plan-test")
    assert dirty.refresh_plan(root, 100.0) is None  # never swept: sweep
    dirty.swept(root, 100.0)
    assert dirty.refresh_plan(root, 101.0) == []
    dirty.mark(root, ["b.py", "a.py", "a.py", ""])
    assert dirty.refresh_plan(root, 102.0) == ["a.py", "b.py"]
    assert dirty.refresh_plan(root, 103.0) == []  # taken
    assert dirty.refresh_plan(root, 100.0 + dirty.SWEEP_EVERY) is None  # a sweep is due
