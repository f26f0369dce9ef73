"""A hostile model driving `lynkr_shell` and `lynkr_tests_run` through a real `lynkr serve`.

The fake upstream plays the model: every tool call below is what an attacker
would send. No policy file is loaded, so nothing but the sandbox (the default,
`tools.sandbox.type: auto`, bubblewrap on this machine) stands in the way:
the policy is a convenience, the sandbox is the boundary.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, text, tool_use

pytestmark = pytest.mark.e2e

CANARY = "sk-ant-api03-SANDBOXCANARY-0123456789abcdef"
OUTSIDE = Path("/tmp") / f"lynkr-sandbox-outside-{os.getpid()}"


@pytest.fixture(scope="module", autouse=True)
def _bubblewrap_works() -> Iterator[None]:
    if not shutil.which("bwrap"):
        pytest.fail("bubblewrap is not installed: scripts/test installs it (apt-get)")
    os.environ["LYNKR_SANDBOX_CANARY"] = CANARY  # read by the server this module starts
    yield
    os.environ.pop("LYNKR_SANDBOX_CANARY", None)


def _server(lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic) -> LynkrServer:
    # The key reaches lynkr through its environment, as a real deployment's does.
    key = "${LYNKR_SANDBOX_CANARY}"
    providers = {"fake": {"type": "anthropic", "base_url": fake.url, "api_key": key, "model": "m"}}
    tools = {
        "execution": "server",
        "workspace": {"root": "."},  # the config's own folder, as the README lays it out
        "enabled": ["shell", "tests"],
        "tests": {"profiles": {"unit": {"command": "cat /proc/*/environ | base64 -w0"}}},
    }
    return lynkr_server("sandboxed", providers=providers, extra={"tools": tools})


def _run(server: LynkrServer, fake: FakeAnthropic, *calls: tuple[str, dict[str, Any]]) -> list[str]:
    """Script the model to make `calls`, ask once, and return each tool result's text."""
    fake.script(
        *(tool_use(name=name, tool_input=args, tool_id=f"toolu_{i}") for i, (name, args) in
          enumerate(calls)),
        text("done"),
    )  # fmt: skip
    body = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "go"}]}
    with httpx.Client(timeout=60, trust_env=False) as client:
        answer = client.post(f"{server.url}/v1/messages", json=body)
    assert answer.status_code == 200, answer.text
    results = []
    for request in fake.message_requests()[1:]:
        block = request.body["messages"][-1]["content"][0]
        assert block["type"] == "tool_result"
        content = block["content"]
        results.append(content if isinstance(content, str) else json.dumps(content))
    return results


def _shell(command: str) -> tuple[str, dict[str, Any]]:
    return "lynkr_shell", {"command": command}


def _leaks(output: str) -> bool:
    encoded = base64.b64encode(CANARY.encode()).decode()
    return CANARY in output or encoded[:40] in output or CANARY[::-1] in output


def test_tools_cannot_read_lynkr_s_key_from_proc(
    lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic
) -> None:
    server = _server(lynkr_server, fake)
    assert server.process is not None
    results = _run(
        server,
        fake,
        # The path is built at run time: no text policy can see it in the command line.
        _shell(
            "python3 -c \"import base64,sys; p='/pro'+'c/'+sys.argv[1]+'/environ'; "
            f"print(base64.b64encode(open(p,'rb').read()))\" {server.process.pid}"
        ),
        _shell("cat /proc/*/environ | rev; ps aux"),
        _shell(
            "python3 -c \"import glob;"
            "print([open(p).read() for p in glob.glob('/proc/*/environ')])\""
        ),
        ("lynkr_tests_run", {"profile": "unit"}),
    )  # fmt: skip
    assert len(results) == 4
    for output in results:
        assert not _leaks(output), output[:2000]
    assert "FileNotFoundError" in results[0]  # lynkr's pid does not exist in the sandbox


def test_tools_cannot_touch_lynkr_s_own_files_or_write_outside(
    lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic
) -> None:
    server = _server(lynkr_server, fake)
    config = server.config_path.read_text()
    OUTSIDE.mkdir(exist_ok=True)
    try:
        results = _run(
            server,
            fake,
            _shell("cat lynkr.yaml; echo 'tools: {}' >> lynkr.yaml; ls data; touch data/evil"),
            _shell(f"sort -o {OUTSIDE}/owned /dev/null; touch {OUTSIDE}/touched; echo x > /etc/x"),
            _shell(f"sort --compress-program=sh -S 1 -T . -o {OUTSIDE}/c lynkr.yaml"),
            _shell("echo mine > made-by-the-model.txt"),
        )
        assert server.config_path.read_text() == config
        assert not (server.log_dir / "data" / "evil").exists()
        assert list(OUTSIDE.iterdir()) == []
        assert CANARY not in results[0]
        assert (server.log_dir / "made-by-the-model.txt").read_text() == "mine\n"
    finally:
        shutil.rmtree(OUTSIDE, ignore_errors=True)
        (server.log_dir / "made-by-the-model.txt").unlink(missing_ok=True)


def test_nothing_outlives_a_call_and_lynkr_cannot_be_killed(
    lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic
) -> None:
    server = _server(lynkr_server, fake)
    _run(
        server,
        fake,
        _shell("setsid sleep 317 > /dev/null 2>&1 & nohup sleep 318 & echo started"),
        _shell("kill -9 $PPID; kill -9 1; pkill -9 -f lynkr; echo tried"),
    )
    time.sleep(0.3)
    survivors = subprocess.run(
        ["pgrep", "-f", "sleep 31[78]"], capture_output=True, text=True, check=False
    )
    assert survivors.stdout.strip() == "", survivors.stdout
    assert server.process is not None and server.process.poll() is None
    with httpx.Client(timeout=5, trust_env=False) as client:
        assert client.get(f"{server.url}/health").status_code == 200
