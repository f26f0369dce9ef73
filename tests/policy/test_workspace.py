"""The workspace seam: every file-system question the evaluator asks goes through one object.

`MemoryWorkspace` answers from a dictionary (symlinks resolved as the kernel
would, wildcards expanded as the shell would) and drives the evaluator with the
disk out of reach; on the same tree laid out in a temporary directory, the disk
`Workspace` makes the very same decisions.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
import glob
import os
import posixpath
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

import lynkr.policy
from lynkr.policy import Policy, ToolContext, Workspace, evaluate_tool_call
from lynkr.policy.path_rules import MAX_GLOB

PACKAGE = Path(lynkr.policy.__file__).parent
# Relative to a base directory: the workspace is `root`, `~` is `home`.
FILES = (
    "root/src/app.py",
    "root/src/util.py",
    "root/notes.txt",
    "root/.env",
    "root/.git/config",
    "outside/secret",
    "home/.ssh/id_rsa",
)
LINKS = {  # link → target; a target starting with "/" is below the base
    "root/inner": "src",  # stays inside
    "root/escape": "../outside",  # a relative link out
    "root/abs": "/outside/secret",  # an absolute link out
    "root/dangling": "/outside/new.txt",  # to nothing yet
    "root/src/up": "../..",  # the base itself: `src/up/outside/…` climbs out
}


class MemoryWorkspace:
    """A `WorkspaceLike` over a dictionary: no disk, same answers as a disk with that tree."""

    def __init__(
        self,
        root: str,
        files: set[str],
        links: Mapping[str, str],
        homes: Mapping[str, str],
        cwd: str | None = None,
    ) -> None:
        self.root, self.cwd = root, cwd
        self.links, self.homes = dict(links), dict(homes)
        self.entries = set(files) | set(links)
        for path in list(self.entries):
            while path != "/":
                path = posixpath.dirname(path)
                self.entries.add(path)

    def realpath(self, path: str) -> str:
        assert path.startswith("/"), path
        resolved, pending, hops = "/", path.split("/"), 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            target = self.links.get(candidate)
            if target is None:
                resolved = candidate
                continue
            hops += 1
            assert hops < 40, f"symlink loop at {candidate}"
            resolved = "/" if target.startswith("/") else resolved
            pending = target.split("/") + pending
        return resolved

    def user_home(self, user: str) -> str | None:
        return self.homes.get(user)

    def glob(self, pattern: str, root_dir: str) -> Iterator[str]:
        start = "/" if pattern.startswith("/") else root_dir
        found = [""]
        for segment in (s for s in pattern.split("/") if s):
            found = [
                posixpath.join(prefix, name)
                for prefix in found
                for name in self._names(posixpath.join(start, prefix), segment)
            ]
        return iter(posixpath.join(start, m) if start == "/" else m for m in found)

    def _names(self, directory: str, segment: str) -> list[str]:
        real = self.realpath(directory)
        if not any(char in segment for char in "*?["):
            return [segment] if posixpath.join(real, segment) in self.entries else []
        names = [e.rsplit("/", 1)[1] for e in self.entries if posixpath.dirname(e) == real]
        return [
            name
            for name in names
            if name
            and fnmatch.fnmatchcase(name, segment)
            and (segment.startswith(".") or not name.startswith("."))
        ]


def _memory(base: str) -> MemoryWorkspace:
    return MemoryWorkspace(
        f"{base}/root",
        {f"{base}/{f}" for f in FILES},
        {f"{base}/{link}": base + t if t.startswith("/") else t for link, t in LINKS.items()},
        {"": f"{base}/home"},
    )


def _on_disk(base: Path) -> Workspace:
    for file in FILES:
        (base / file).parent.mkdir(parents=True, exist_ok=True)
        (base / file).write_text("x\n")
    for link, target in LINKS.items():
        os.symlink(f"{base}{target}" if target.startswith("/") else target, base / link)
    return Workspace(str(base / "root"), home=str(base / "home"))


@pytest.fixture
def no_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[], AbstractContextManager[None]]:
    """`with no_disk():` — inside the block, any file-system call fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the evaluator touched the file system: {args!r}")

    @contextmanager
    def block() -> Iterator[None]:
        with monkeypatch.context() as patch:
            for module, names in (
                (os.path, ("realpath", "expanduser", "exists", "lexists", "isdir", "islink")),
                (os, ("stat", "lstat", "scandir", "listdir", "readlink", "getcwd")),
                (glob, ("glob", "iglob")),
                (builtins, ("open",)),
            ):
                for name in names:
                    patch.setattr(module, name, refuse)
            yield

    return block


CALLS: list[tuple[str, dict[str, str]]] = [
    ("Read", {"file_path": "src/app.py"}),
    ("Read", {"file_path": "inner/app.py"}),
    ("Read", {"file_path": "escape/secret"}),
    ("Read", {"file_path": "abs"}),
    ("Write", {"file_path": "dangling"}),
    ("Read", {"file_path": "src/up/outside/secret"}),
    ("Read", {"file_path": "src/up/root/src/app.py"}),
    ("Edit", {"file_path": "inner/../.env"}),
    ("Read", {"file_path": "~/.ssh/id_rsa"}),
    ("Read", {"file_path": "~no-such-user-here/x"}),
    ("Write", {"file_path": ".git/config"}),
    ("Glob", {"pattern": "../**/*.py"}),
    ("Grep", {"pattern": "x", "path": "escape"}),
    ("Bash", {"command": "cat *.txt"}),
    ("Bash", {"command": "cat */secret"}),
    ("Bash", {"command": "cat .e*"}),
    ("Bash", {"command": "cat s*/*.py && ls src/?pp.py"}),
    ("Bash", {"command": "cat {src,inner}/*.py"}),
    ("Bash", {"command": "cat no-such-*"}),
    ("Bash", {"command": "cat ~/.ssh/*"}),
    ("Bash", {"command": "cd inner && cat ../.env"}),
    ("Bash", {"command": "cd escape && cat secret"}),
    ("Bash", {"command": "echo x > inner/new.txt"}),
    ("Bash", {"command": "find inner -name '*.py'"}),
    ("Bash", {"command": "cat app.py", "cwd": "src"}),
    ("Bash", {"command": "cat *", "cwd": "inner"}),
]


@pytest.mark.parametrize(("tool", "arguments"), CALLS)
def test_memory_and_disk_workspaces_decide_alike(
    tmp_path: Path,
    policies: dict[str, Policy],
    no_disk: Callable[[], AbstractContextManager[None]],
    tool: str,
    arguments: dict[str, str],
) -> None:
    base = tmp_path.resolve()
    disk = _on_disk(base)
    memory = _memory(str(base))
    for policy in policies.values():
        expected = evaluate_tool_call(policy, tool, arguments, ToolContext(workspace=disk))
        with no_disk():
            decision = evaluate_tool_call(policy, tool, arguments, ToolContext(workspace=memory))
        assert decision == expected


def test_the_table_meets_every_kind_of_decision(
    tmp_path: Path, policies: dict[str, Policy]
) -> None:
    """The table above is worth comparing: it allows, and denies by several rules."""
    disk = ToolContext(workspace=_on_disk(tmp_path.resolve()))
    rules = {evaluate_tool_call(policies["default"], t, a, disk).rule for t, a in CALLS}
    assert {"tools.allow", "shell.default", "files.workspace_only", "files.deny"} <= rules
    assert "files.deny_write" in rules


def test_a_workspace_that_is_not_on_disk(
    no_disk: Callable[[], AbstractContextManager[None]],
) -> None:
    """Nothing below exists on this machine: only the memory workspace knows these links."""
    memory = MemoryWorkspace(
        "/ws",
        {"/ws/a.txt", "/elsewhere/key"},
        {"/ws/b.txt": "/elsewhere/key", "/ws/docs": "sub/../../elsewhere"},
        {"": "/home/me"},
    )
    context = ToolContext(workspace=memory)
    policy = Policy()
    with no_disk():
        read = evaluate_tool_call(policy, "Read", {"file_path": "a.txt"}, context)
        via_link = evaluate_tool_call(policy, "Read", {"file_path": "docs/key"}, context)
        wildcard = evaluate_tool_call(policy, "Bash", {"command": "cat *.txt"}, context)
        literal = evaluate_tool_call(policy, "Bash", {"command": "cat a.txt"}, context)
    assert read.allowed and literal.allowed
    assert via_link.rule == "files.workspace_only"  # `sub/../..` climbs out of /ws
    assert wildcard.rule == "files.workspace_only"  # `*.txt` meets b.txt → /elsewhere/key
    assert "'/ws/b.txt'" in wildcard.reason


def test_a_wildcard_matching_too_much_is_refused(
    no_disk: Callable[[], AbstractContextManager[None]],
) -> None:
    files = {f"/ws/f{n}.txt" for n in range(MAX_GLOB + 1)}
    memory = MemoryWorkspace("/ws", files, {}, {})
    with no_disk():
        decision = evaluate_tool_call(
            Policy(), "Bash", {"command": "cat *.txt"}, ToolContext(workspace=memory)
        )
    assert decision.rule == "files.glob_too_wide"


# Module calls that reach the file system, the user database or the process's directory.
_IO_MODULES = {"os", "glob", "pathlib", "shutil", "io", "tempfile", "subprocess", "socket"}
_IO_CALLS = {
    "realpath", "abspath", "expanduser", "exists", "lexists", "isdir", "isfile", "islink",
    "ismount", "samefile", "getsize", "getmtime", "getatime", "getctime", "open",
}  # fmt: skip


def test_only_the_workspace_module_reaches_the_file_system() -> None:
    """The rules are pure functions of (policy, call, workspace): only `workspace.py` does I/O."""
    for path in PACKAGE.glob("*.py"):
        if path.name == "workspace.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops = {node.module.split(".")[0]}
            else:
                tops = set()
            assert not tops & _IO_MODULES, f"{path.name} imports {tops & _IO_MODULES}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in _IO_CALLS, f"{path.name}:{node.lineno} calls {node.attr}"
            if isinstance(node, ast.Name):
                assert node.id != "open", f"{path.name}:{node.lineno} opens a file"
