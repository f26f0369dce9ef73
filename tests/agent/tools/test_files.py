"""The files family on real files: read, write, edit, glob, grep, history and revert."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import pytest

from lynkr.agent.tools.files.reading import DEFAULT_LINES, MAX_READ_BYTES
from tests.agent.tools.conftest import ToolCaller

pytestmark = pytest.mark.anyio


def _text(result: object) -> str:
    content = result.content  # type: ignore[attr-defined]
    assert isinstance(content, str)
    return content


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# ── read ─────────────────────────────────────────────────────────────────────


async def test_read_numbers_lines_like_cat_n(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "a.py").write_text("one\ntwo\nthree\n")
    result = await tools("lynkr_file_read", {"file_path": "a.py"})
    assert not result.is_error
    assert _text(result) == "     1\tone\n     2\ttwo\n     3\tthree"


async def test_read_offset_and_limit(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    text = _text(await tools("lynkr_file_read", {"file_path": "a.txt", "offset": 4, "limit": 2}))
    assert text.splitlines()[:2] == ["     4\tline 4", "     5\tline 5"]
    assert "offset=6" in text


async def test_read_past_the_end_and_empty(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "short.txt").write_text("a\nb\n")
    (workspace / "empty.txt").write_text("")
    assert "only 2 lines" in _text(
        await tools("lynkr_file_read", {"file_path": "short.txt", "offset": 9})
    )
    assert "empty" in _text(await tools("lynkr_file_read", {"file_path": "empty.txt"}))


async def test_huge_file_is_cut_with_a_note(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "big.txt").write_text("".join(f"{n}\n" for n in range(100_000)))
    text = _text(await tools("lynkr_file_read", {"file_path": "big.txt"}))
    assert len(text.splitlines()) == DEFAULT_LINES + 1
    assert f"offset={DEFAULT_LINES + 1}" in text


async def test_long_lines_and_byte_cap(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "wide.txt").write_text(("x" * 5000 + "\n") * 100)
    text = _text(await tools("lynkr_file_read", {"file_path": "wide.txt"}))
    assert "[… line cut]" in text
    assert len(text) < MAX_READ_BYTES + 5000
    assert "read on with offset=" in text


async def test_binary_file_is_described_not_shown(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "blob.bin").write_bytes(b"\x00\x01\x02garbage" * 100)
    result = await tools("lynkr_file_read", {"file_path": "blob.bin"})
    assert not result.is_error
    assert _text(result).startswith("binary file (1000 bytes)")


async def test_png_comes_back_as_an_image_block(tools: ToolCaller, workspace: Path) -> None:
    data = _png()
    (workspace / "pixel.png").write_bytes(data)
    result = await tools("lynkr_file_read", {"file_path": "pixel.png"})
    assert isinstance(result.content, list)
    block = result.content[0]
    assert block["type"] == "image"
    assert block["source"]["media_type"] == "image/png"
    assert base64.b64decode(block["source"]["data"]) == data


async def test_read_errors_are_clear(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "dir").mkdir()
    missing = await tools("lynkr_file_read", {"file_path": "nope.txt"})
    assert missing.is_error and "does not exist" in _text(missing)
    directory = await tools("lynkr_file_read", {"file_path": "dir"})
    assert directory.is_error and "directory" in _text(directory)


# ── write and edit ───────────────────────────────────────────────────────────


async def test_write_creates_parents_and_overwrites(tools: ToolCaller, workspace: Path) -> None:
    first = await tools("lynkr_file_write", {"file_path": "src/new/mod.py", "content": "x = 1\n"})
    assert not first.is_error and _text(first).startswith("created src/new/mod.py")
    second = await tools("lynkr_file_write", {"file_path": "src/new/mod.py", "content": "x = 2\n"})
    assert _text(second).startswith("overwrote")
    assert (workspace / "src/new/mod.py").read_text() == "x = 2\n"


async def test_edit_replaces_a_unique_string(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "m.py").write_text("def f():\n    return 1\n")
    args = {"file_path": "m.py", "old_string": "return 1", "new_string": "return 2"}
    result = await tools("lynkr_file_edit", args)
    assert not result.is_error and "1 replacement" in _text(result)
    assert (workspace / "m.py").read_text() == "def f():\n    return 2\n"


async def test_edit_refuses_an_ambiguous_string(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "m.py").write_text("a = 1\nb = 1\n")
    args = {"file_path": "m.py", "old_string": "= 1", "new_string": "= 2"}
    result = await tools("lynkr_file_edit", args)
    assert result.is_error and "occurs 2 times" in _text(result) and "replace_all" in _text(result)
    assert (workspace / "m.py").read_text() == "a = 1\nb = 1\n"
    result = await tools("lynkr_file_edit", {**args, "replace_all": True})
    assert "2 replacement" in _text(result)
    assert (workspace / "m.py").read_text() == "a = 2\nb = 2\n"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [("missing", "x", "not found"), ("same", "same", "the same")],
)
async def test_edit_errors(
    tools: ToolCaller, workspace: Path, old: str, new: str, message: str
) -> None:
    (workspace / "m.txt").write_text("same text\n")
    result = await tools(
        "lynkr_file_edit", {"file_path": "m.txt", "old_string": old, "new_string": new}
    )
    assert result.is_error and message in _text(result)
    assert (workspace / "m.txt").read_text() == "same text\n"


async def test_edit_with_empty_old_string_creates_only_new_files(
    tools: ToolCaller, workspace: Path
) -> None:
    created = await tools(
        "lynkr_file_edit", {"file_path": "n.txt", "old_string": "", "new_string": "hi"}
    )
    assert not created.is_error and (workspace / "n.txt").read_text() == "hi"
    again = await tools(
        "lynkr_file_edit", {"file_path": "n.txt", "old_string": "", "new_string": "x"}
    )
    assert again.is_error and "not empty" in _text(again)
    missing = await tools(
        "lynkr_file_edit", {"file_path": "m.txt", "old_string": "a", "new_string": "b"}
    )
    assert missing.is_error and "does not exist" in _text(missing)


async def test_edit_refuses_binary_files(tools: ToolCaller, workspace: Path) -> None:
    (workspace / "b.bin").write_bytes(b"\xff\xfe\x00abc")
    result = await tools(
        "lynkr_file_edit", {"file_path": "b.bin", "old_string": "abc", "new_string": "d"}
    )
    assert result.is_error and "UTF-8" in _text(result)


# ── history and revert ───────────────────────────────────────────────────────


async def test_history_and_revert_undo_edits_in_order(tools: ToolCaller, workspace: Path) -> None:
    target = workspace / "h.txt"
    target.write_text("v1\n")
    await tools("lynkr_file_edit", {"file_path": "h.txt", "old_string": "v1", "new_string": "v2"})
    await tools("lynkr_file_edit", {"file_path": "h.txt", "old_string": "v2", "new_string": "v3"})
    history = _text(await tools("lynkr_file_history", {"file_path": "h.txt"}))
    assert history.splitlines()[0].startswith("#2 ") and "#1 " in history
    early = await tools("lynkr_file_revert", {"edit_id": 1})
    assert early.is_error and "changed after edit 1" in _text(early)
    assert not (await tools("lynkr_file_revert", {"edit_id": 2})).is_error
    assert target.read_text() == "v2\n"
    assert not (await tools("lynkr_file_revert", {"edit_id": 1})).is_error
    assert target.read_text() == "v1\n"
    assert "revert 1" in _text(await tools("lynkr_file_history", {}))


async def test_revert_of_a_created_file_deletes_it(tools: ToolCaller, workspace: Path) -> None:
    await tools("lynkr_file_write", {"file_path": "made.txt", "content": "new"})
    assert (await tools("lynkr_file_revert", {"edit_id": 1})).is_error is False
    assert not (workspace / "made.txt").exists()


async def test_revert_force_and_unknown_id(tools: ToolCaller, workspace: Path) -> None:
    await tools("lynkr_file_write", {"file_path": "f.txt", "content": "mine"})
    (workspace / "f.txt").write_text("changed by hand")
    assert not (await tools("lynkr_file_revert", {"edit_id": 1, "force": True})).is_error
    assert not (workspace / "f.txt").exists()
    unknown = await tools("lynkr_file_revert", {"edit_id": 99})
    assert unknown.is_error and "no edit 99" in _text(unknown)


# ── glob and grep ────────────────────────────────────────────────────────────


def _tree(workspace: Path) -> None:
    for path, text in {
        "src/a.py": "import os\nTODO = 1\n",
        "src/pkg/b.py": "todo: lower\n",
        "docs/readme.md": "TODO docs\n",
        ".git/config": "TODO never\n",
        "bin.dat": "TODO\x00binary",
    }.items():
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_text(text)


async def test_glob_matches_names_at_any_depth_and_paths(
    tools: ToolCaller, workspace: Path
) -> None:
    _tree(workspace)
    assert _text(await tools("lynkr_file_glob", {"pattern": "*.py"})) == "src/a.py\nsrc/pkg/b.py"
    assert _text(await tools("lynkr_file_glob", {"pattern": "src/*.py"})) == "src/a.py"
    assert _text(await tools("lynkr_file_glob", {"pattern": "**/*.md"})) == "docs/readme.md"
    assert (
        _text(await tools("lynkr_file_glob", {"pattern": "*.py", "path": "src/pkg"}))
        == "src/pkg/b.py"
    )
    assert "config" not in _text(await tools("lynkr_file_glob", {"pattern": "*"}))
    limited = _text(await tools("lynkr_file_glob", {"pattern": "*", "limit": 1}))
    assert "more than 1" in limited


# The Python search, whether or not this machine has an `rg` on PATH.
NO_RIPGREP = {"PATH": ""}


async def test_grep_python_fallback(tools: ToolCaller, workspace: Path) -> None:
    _tree(workspace)
    text = _text(await tools("lynkr_file_grep", {"pattern": "TODO"}, env=NO_RIPGREP))
    assert text.splitlines() == ["docs/readme.md:1:TODO docs", "src/a.py:2:TODO = 1"]
    insensitive = _text(
        await tools(
            "lynkr_file_grep", {"pattern": "todo", "case_insensitive": True}, env=NO_RIPGREP
        )
    )
    assert "src/pkg/b.py:1:todo: lower" in insensitive
    only_py = _text(
        await tools("lynkr_file_grep", {"pattern": "TODO", "glob": "*.py"}, env=NO_RIPGREP)
    )
    assert only_py == "src/a.py:2:TODO = 1"
    one_file = _text(
        await tools("lynkr_file_grep", {"pattern": "os", "path": "src/a.py"}, env=NO_RIPGREP)
    )
    assert one_file == "src/a.py:1:import os"


async def test_grep_errors_and_no_matches(tools: ToolCaller, workspace: Path) -> None:
    _tree(workspace)
    bad = await tools("lynkr_file_grep", {"pattern": "("}, env=NO_RIPGREP)
    assert bad.is_error and "invalid regular expression" in _text(bad)
    nothing = await tools("lynkr_file_grep", {"pattern": "zzz-nothing"}, env=NO_RIPGREP)
    assert "no matches" in _text(nothing)
    limited = _text(await tools("lynkr_file_grep", {"pattern": ".", "limit": 1}, env=NO_RIPGREP))
    assert "more than 1 matches" in limited


async def test_grep_uses_ripgrep_when_on_path(
    tools: ToolCaller, workspace: Path, tmp_path: Path
) -> None:
    """A stand-in `rg` records its argv: options first, the pattern as data, `--` before paths."""
    _tree(workspace)  # the hit names a real file: hits in missing or linked files are dropped
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "rg"
    fake.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\nprintf "./src/a.py:2:TODO = 1\\n"\n'
    )
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = await tools("lynkr_file_grep", {"pattern": "-e; $(x)", "glob": "*.py"}, env=env)
    assert _text(result) == "src/a.py:2:TODO = 1"
    args = (bin_dir / "rg.args").read_text().splitlines()
    assert args[:2] == ["--no-config", "--line-number"]
    assert args[-4:] == ["--regexp", "-e; $(x)", "--", "."]
    assert args[args.index("--glob") + 1] == "*.py"


async def test_one_endless_line_is_read_in_bounded_memory(
    tools: ToolCaller, workspace: Path
) -> None:
    """A 64 MiB line used to be read whole (a 1 GB one took RSS to 2.5 GB)."""
    import tracemalloc

    with (workspace / "one-line.txt").open("wb") as out:
        for _ in range(64):
            out.write(b"a" * (1 << 20))
        out.write(b"\nsecond line\n")
    tracemalloc.start()
    try:
        result = await tools("lynkr_file_read", {"file_path": "one-line.txt"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    shown = _text(result)
    assert "[… line cut]" in shown and "     2\tsecond line" in shown
    assert peak < 4 << 20, peak  # megabytes, not the line's 64 MiB
