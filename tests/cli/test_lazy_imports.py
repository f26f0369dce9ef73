"""`lynkr validate` loads only what checking a config needs (target: at most 300 ms).

Not a timing test: a fresh interpreter runs the command in-process and reports
`sys.modules`, and a module that only `serve` needs (the ASGI servers, the
logging setup) or that the default config does not use (the server-side tools
and dulwich) must not be in it. An eager import added anywhere on the path
fails here instead of silently slowing every `lynkr validate`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# Runs in the child: the command in-process, then what it left loaded.
_PROBE = """
import contextlib, io, json, sys
from lynkr.cli import main
after_import = sorted(sys.modules)
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
structlog = sys.modules.get("structlog")
print(json.dumps({
    "after_import": after_import,
    "status": status,
    "out": out.getvalue(),
    "modules": sorted(sys.modules),
    "logging_configured": bool(structlog and structlog.is_configured()),
}))
"""


@cache
def _probe(*argv: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LYNKR_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _validate_default() -> dict[str, Any]:
    result = _probe("validate", "lynkr.yaml")
    assert (result["status"], result["out"]) == (0, "lynkr.yaml: ok\n")
    return result


def _loaded(modules: list[str], name: str) -> list[str]:
    return [m for m in modules if m == name or m.startswith(name + ".")]


def test_importing_the_cli_loads_nothing_but_the_standard_library() -> None:
    """`lynkr --help` and `--version` start as fast as Python does."""
    foreign = [
        name
        for name in _validate_default()["after_import"]
        if name.split(".")[0] not in sys.stdlib_module_names
        and name not in {"__main__", "lynkr", "lynkr.cli", "_distutils_hack", "sitecustomize"}
    ]
    packages = sorted({name.split(".")[0] for name in foreign} | set(_loaded(foreign, "lynkr")))
    assert not foreign, f"importing lynkr.cli imports {packages}; import them in the command"


@pytest.mark.parametrize(
    "module",
    [
        # The ASGI servers and what uvicorn[standard] brings: `serve` only.
        "uvicorn",
        "granian",
        "uvloop",
        "httptools",
        "websockets",
        "watchfiles",
        "starlette",
        # Server-side tools (tools.execution: server|hybrid), off in the default config.
        "lynkr.agent.tools",
        "dulwich",
        # Added by `serve` around the built app.
        "lynkr.middleware.accesslog",
        # The upstream HTTP client: constructing an adapter opens no connection, so
        # it is needed only once the server starts (UpstreamClient.open).
        "aiohttp",
    ],
)
def test_validate_does_not_import(module: str) -> None:
    loaded = _loaded(_validate_default()["modules"], module)
    assert not loaded, f"lynkr validate lynkr.yaml imported {loaded}"


def test_validate_leaves_logging_alone() -> None:
    assert not _validate_default()["logging_configured"]


def test_the_probe_sees_imports() -> None:
    """The check itself works: a command that needs them shows the modules it loaded."""
    policy = ("--policy", "policies/default.yaml")
    result = _probe("policy", "check", *policy, "--tool", "Read", "--input", '{"file_path": "a"}')
    assert (result["status"], result["out"].split(":")[0]) == (0, "allowed")
    assert _loaded(result["modules"], "lynkr.policy.tool_calls")
    assert not _loaded(result["after_import"], "lynkr.policy.tool_calls")
    assert not _loaded(result["modules"], "lynkr.middleware")  # the evaluator is called directly
