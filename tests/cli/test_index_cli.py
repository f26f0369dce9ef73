"""`lynkr index build|symbols|refs|outline` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lynkr.cli import main
from tests.repoindex.fixtures import FIXTURES


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for path, source in FIXTURES.values():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(source)
    return root


def test_build_then_look_up(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "build", str(repo), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == len(FIXTURES) and summary["symbols"] > 20
    assert {"files", "symbols", "references", "languages", "seconds"} <= set(summary)
    assert (repo / ".lynkr" / "index.sqlite3").exists()

    assert main(["index", "symbols", str(repo), "persist", "--format", "json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert (hit["name"], hit["kind"], hit["path"], hit["line"], hit["column"]) == (
        "persist", "function", "app/models.py", 12, 5
    )  # fmt: skip
    assert main(["index", "symbols", str(repo), "ar", "--kind", "method"]) == 0
    assert "src/shape.cpp:10:15" in capsys.readouterr().out  # `area`, by prefix
    assert main(["index", "refs", str(repo), "persist", "--format", "json"]) == 0
    assert [(r["path"], r["line"]) for r in json.loads(capsys.readouterr().out)] == [
        ("app/models.py", 9)
    ]
    assert main(["index", "outline", str(repo), "app/models.py"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "app/models.py:5:7", "app/models.py:8:9", "app/models.py:12:5"
    ]  # fmt: skip
    assert main(["index", "symbols", str(repo), "nothing_like_this"]) == 1
    assert main(["index", "map", str(repo), "--tokens", "120", "--focus", "persist"]) == 0
    mapped = capsys.readouterr().out
    assert "app/models.py:\n" in mapped and "def persist(obj):" in mapped
    assert len(mapped) <= 120 * 4

    assert main(["index", "build", str(repo)]) == 0
    assert "0 parsed, 9 unchanged" in capsys.readouterr().out


def test_mistakes_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "symbols", str(tmp_path), "x"]) == 2
    assert "run `lynkr index build" in capsys.readouterr().err
    assert main(["index", "build", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["index"]) == 2


def test_watch_refreshes_a_file_as_it_changes(repo: Path, tmp_path: Path) -> None:
    import subprocess
    import sys
    import threading

    from lynkr.repoindex import IndexDB

    db = tmp_path / "watched.sqlite3"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "lynkr", "index", "watch", str(repo), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.append(line)
            if "changed:" in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = 30.0
        started = threading.Event()
        for _ in range(int(deadline * 10)):
            if any(line.startswith("watching") for line in lines):
                started.set()
                break
            seen.wait(0.1)
        assert started.is_set(), lines
        (repo / "app" / "extra.py").write_text("def appeared_later():\n    pass\n")
        assert seen.wait(deadline), lines
        index = IndexDB(db)
        assert [h.path for h in index.symbols("appeared_later")] == ["app/extra.py"]
        index.close()
    finally:
        watcher.terminate()
        watcher.wait(10)
        reader.join(5)
        if watcher.stdout is not None:
            watcher.stdout.close()
