"""`lynkr serve --server granian`: the app is served, with its lifespan, by granian."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lynkr.cli import SERVERS, _parser

REPO = Path(__file__).resolve().parents[2]


def test_the_server_flag_accepts_uvicorn_and_granian_only() -> None:
    assert set(SERVERS) == {"uvicorn", "granian"}
    args = _parser().parse_args(["serve", "--server", "granian"])
    assert args.server == "granian"
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--server", "hypercorn"])


def test_granian_serves_health_and_runs_the_lifespan(
    tmp_path: Path, closed_port: int, free_port: int
) -> None:
    pytest.importorskip("granian")
    config = tmp_path / "lynkr.yaml"
    config.write_text(
        "version: 1\n"
        f"server: {{data_dir: {tmp_path}/data, access_log: false, log_level: warning}}\n"
        "providers:\n"
        f'  up: {{type: anthropic, base_url: "http://127.0.0.1:{closed_port}", api_key: k}}\n'
        "pools: {main: {providers: [up]}}\n"
        "routes: [{path: /v1/messages, middleware: [{use: routing}], app: agent}]\n"
    )
    command = [
        sys.executable, "-m", "lynkr", "serve",
        "--config", str(config), "--port", str(free_port), "--server", "granian",
    ]  # fmt: skip
    stderr = tmp_path / "stderr.log"
    with open(stderr, "wb") as err:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL
        )
    try:
        health = ready = None
        deadline = time.monotonic() + 20
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    health = client.get(f"http://127.0.0.1:{free_port}/health")
                    # /ready answers 200 only once the ASGI lifespan startup ran.
                    ready = client.get(f"http://127.0.0.1:{free_port}/ready")
                    if health.status_code == 200 and ready.status_code == 200:
                        break
                time.sleep(0.1)
        log = stderr.read_text(errors="replace")
        assert health is not None and health.status_code == 200, log
        assert health.json() == {"status": "ok"}
        assert ready is not None and ready.status_code == 200, log
        assert health.headers.get("server") == "granian"
        # granian serves from a worker process; stopping lynkr by its pid stops that too.
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        workers = [int(pid) for pid in children.read_text().split()] if children.exists() else []
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    assert process.returncode == 0, stderr.read_text(errors="replace")
    for worker in workers:
        assert not Path(f"/proc/{worker}").exists() or _is_zombie(worker), f"worker {worker} left"


def _is_zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
