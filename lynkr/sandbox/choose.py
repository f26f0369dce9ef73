"""Which sandbox a server gets, and the probe that proves bubblewrap can start here."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lynkr.sandbox.base import Sandbox, SandboxError, Unconfined
from lynkr.sandbox.bubblewrap import Bubblewrap

__all__ = ["choose_sandbox", "probe"]

_PROBE_TIMEOUT = 10.0


def choose_sandbox(
    kind: str,
    *,
    workspace: Path,
    protected: Sequence[Path] = (),
    network: bool = False,
) -> tuple[Sandbox, str | None]:
    """The sandbox for `tools.sandbox.type` and a warning to print at start, if any.

    `bubblewrap` that cannot start raises `SandboxError` (never a silent
    fallback); `auto` uses bubblewrap when `bwrap` is installed and works, and
    otherwise runs unconfined with a warning saying how to fix it.
    """
    if kind == "none":
        return Unconfined(), None
    if kind == "auto" and not shutil.which("bwrap"):
        return Unconfined(), (
            "tools run WITHOUT a sandbox: bubblewrap is not installed. Install it "
            "(apt-get install bubblewrap) or set tools.sandbox.type: none to say you mean it."
        )
    sandbox = Bubblewrap(workspace=workspace, protected=protected, network=network)
    failure = probe(sandbox)
    if failure is None:
        return sandbox, None
    if kind == "bubblewrap":
        raise SandboxError(
            f"tools.sandbox.type is bubblewrap, but bwrap cannot start here: {failure}. "
            "Allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) "
            "or set tools.sandbox.type: none."
        )
    return Unconfined(), f"tools run WITHOUT a sandbox: bwrap cannot start here ({failure})"


def probe(sandbox: Bubblewrap) -> str | None:
    """Run `true` in `sandbox`; None when it worked, else why it did not."""
    command = sandbox.wrap(["true"], sandbox.workspace, {"PATH": "/usr/bin:/bin"})
    try:
        done = subprocess.run(
            command.argv,
            cwd=command.cwd,
            env=command.env,
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", "replace").strip()[:300] or f"exit {done.returncode}"
    return None
