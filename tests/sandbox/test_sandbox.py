"""The sandbox package: choosing one, bubblewrap's confinement, refusing a missing one."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lynkr.agent.tools.shell import run_process, shell_argv
from lynkr.sandbox import Bubblewrap, SandboxError, Unconfined, choose_sandbox

ENV = {"PATH": "/usr/bin:/bin"}


def _run(sandbox: object, workspace: Path, line: str) -> tuple[int | None, str]:
    result = asyncio.run(
        run_process(
            shell_argv(line),
            cwd=workspace,
            env=ENV,
            timeout=20,
            max_output_bytes=20_000,
            sandbox=sandbox,  # type: ignore[arg-type]
        )
    )
    return result.exit_code, result.output


def test_none_and_auto_without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, warning = choose_sandbox("none", workspace=tmp_path)
    assert isinstance(sandbox, Unconfined) and warning is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    sandbox, warning = choose_sandbox("auto", workspace=tmp_path)
    assert isinstance(sandbox, Unconfined)
    assert warning is not None and "apt-get install bubblewrap" in warning
    with pytest.raises(SandboxError, match=r"tools\.sandbox\.type: none"):
        choose_sandbox("bubblewrap", workspace=tmp_path)


def test_a_bwrap_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "bwrap"
    broken.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    os.environ["PATH"], old = f"{tmp_path}:{os.environ['PATH']}", os.environ["PATH"]
    try:
        with pytest.raises(SandboxError, match="No permissions to create new namespace"):
            choose_sandbox("bubblewrap", workspace=tmp_path)
        sandbox, warning = choose_sandbox("auto", workspace=tmp_path)
        assert isinstance(sandbox, Unconfined) and warning and "cannot start" in warning
    finally:
        os.environ["PATH"] = old


def test_bubblewrap_confines(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "policies").mkdir(parents=True)
    (workspace / "policies" / "default.yaml").write_text("rules: strict\n")
    (workspace / "lynkr.yaml").write_text("version: 1\n")
    sandbox, warning = choose_sandbox(
        "bubblewrap",
        workspace=workspace,
        protected=(workspace / "policies", workspace / "lynkr.yaml", tmp_path / "elsewhere"),
    )
    assert isinstance(sandbox, Bubblewrap) and warning is None
    code, out = _run(sandbox, workspace, "ls /proc | grep -c '^[0-9]'; echo home=$HOME")
    assert int(out.splitlines()[0]) <= 4 and "home=/tmp/home" in out  # only its own processes
    code, out = _run(sandbox, workspace, "ls policies; cat lynkr.yaml; echo x > policies/p")
    assert "rules: strict" not in out and "version: 1" not in out and code != 0
    code, out = _run(sandbox, workspace, f"touch {tmp_path}/escaped; echo x > made")
    assert not (tmp_path / "escaped").exists()
    assert (workspace / "made").read_text() == "x\n"
    assert (workspace / "policies" / "default.yaml").read_text() == "rules: strict\n"
    code, out = _run(sandbox, workspace, "cat < /dev/tcp/127.0.0.1/22 2>&1; ip link 2>&1 | head -3")
    assert "eth0" not in out  # no network namespace of the host's
    assert "bubblewrap" in sandbox.describe() and "no network" in sandbox.describe()
