"""`Bubblewrap`: each tool process in namespaces of its own, seeing only what is bound in.

What the process gets (bwrap's options, built once per server):

* `--unshare-all` (user, pid, network, IPC, UTS, cgroup namespaces) and a
  fresh `/proc`: it sees only its own processes, so no `/proc/<lynkr>/environ`
  (lynkr's keys) and no `kill $PPID`; `--share-net` only with `network: true`;
* the system read-only (`/usr`, `/bin`, `/lib*`, `/sbin`, `/etc`, and the
  Python installation lynkr runs from when it lives elsewhere, so `python3`
  and `pytest` work), a fresh `/dev`, a private `/tmp`;
* the workspace, at the same path, the only writable place;
* lynkr's own files that sit inside it (`ToolContext.protected`: the config,
  the policy folder, the data dir) covered: an empty read-only directory over
  a directory, `/dev/null` over a file;
* `HOME` a private directory (`/tmp/home`): a `.gitconfig` the model writes
  lives only as long as the call;
* `--die-with-parent` (it dies with lynkr) and `--new-session` (no terminal
  to inject into); when the call ends, its pid namespace ends with it, so a
  `setsid … &` child dies too;
* with `prlimit` on the host, resource limits: file size, open files, no core
  dumps.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from lynkr.sandbox.base import Command

__all__ = ["Bubblewrap"]

# Read-only system paths, bound when they exist (merged-/usr systems link the others).
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
HOME = "/tmp/home"
# Parents a PATH entry never widens to.
_TOO_WIDE = frozenset({Path("/"), Path.home(), Path("/home"), Path("/root")})


class Bubblewrap:
    """Runs each command under `bwrap` (see the module docstring for what it confines)."""

    name = "bubblewrap"

    def __init__(
        self,
        *,
        workspace: Path,
        protected: Sequence[Path] = (),
        network: bool = False,
        file_size_mb: int = 1024,
        open_files: int = 1024,
        bwrap: str | None = None,
    ) -> None:
        found = bwrap or shutil.which("bwrap")
        if not found:
            from lynkr.sandbox.base import SandboxError

            raise SandboxError(
                "bubblewrap is not installed (no `bwrap` on PATH): install it "
                "(Debian/Ubuntu: apt-get install bubblewrap) or set tools.sandbox.type: none"
            )
        self.bwrap = found
        self.workspace = workspace.resolve()
        self.network = network
        self._prefix = self._options(protected)
        self._path_binds: dict[str, list[str]] = {}
        prlimit = shutil.which("prlimit")
        self._limits = (
            [prlimit, f"--fsize={file_size_mb * 1024 * 1024}", f"--nofile={open_files}",
             "--core=0", "--"]
            if prlimit
            else []
        )  # fmt: skip

    def wrap(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Command:
        environment = {**env, "HOME": HOME, "TMPDIR": "/tmp"}
        command = [
            *self._limits,
            *self._prefix,
            *self._programs(env.get("PATH", "")),
            "--chdir",
            str(cwd.resolve()),
            "--",
            *argv,
        ]
        # bwrap itself starts in the workspace: a cwd outside it would not exist inside.
        return Command(command, self.workspace, environment)

    def _programs(self, path: str) -> list[str]:
        """Read-only binds for the tools' PATH outside the system paths (a venv, pyenv).

        A `bin` or `shims` folder brings its parent (a venv's `lib`, pyenv's
        versions), unless the parent is a home directory or the root: `~/bin`
        never exposes `~/.ssh`.
        """
        options = self._path_binds.get(path)
        if options is None:
            options = []
            for entry in dict.fromkeys(p for p in path.split(":") if p.startswith("/")):
                folder = Path(entry)
                if str(folder).startswith(_SYSTEM) or folder.is_relative_to(self.workspace):
                    continue
                parent = folder.parent
                # Never a parent of the workspace: bound later it would hide the workspace's
                # writable bind and the covers over lynkr's files.
                widen = folder.name in ("bin", "shims") and parent not in _TOO_WIDE
                if widen and not self.workspace.is_relative_to(parent):
                    folder = parent
                if self.workspace.is_relative_to(folder):
                    continue
                options += ["--ro-bind-try", str(folder), str(folder)]
            self._path_binds[path] = options
        return options

    def describe(self) -> str:
        network = "network on" if self.network else "no network"
        return f"bubblewrap: writes only to {self.workspace}, {network}, lynkr's files hidden"

    def _options(self, protected: Sequence[Path]) -> list[str]:
        options = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session"]
        if self.network:
            options.append("--share-net")
        for path in _SYSTEM:
            options += ["--ro-bind-try", path, path]
        for path in _python_roots():
            options += ["--ro-bind-try", path, path]
        options += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", HOME]
        workspace = str(self.workspace)
        options += ["--bind", workspace, workspace]
        for own in protected:
            options += _cover(own.resolve(), self.workspace)
        return options


def _python_roots() -> list[str]:
    """The Python lynkr runs from, when outside the system paths (a venv, a uv install)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return sorted(root for root in roots if not root.startswith(_SYSTEM))


def _cover(path: Path, workspace: Path) -> list[str]:
    """Options hiding `path` inside the sandbox, when the workspace would show it."""
    if not path.is_relative_to(workspace):
        return []  # never bound in: already invisible
    if path.is_dir():
        return ["--tmpfs", str(path), "--remount-ro", str(path)]
    if path.exists():
        return ["--ro-bind", "/dev/null", str(path)]
    return []
