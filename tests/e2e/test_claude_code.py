"""End to end with the real Claude Code CLI, headless (docs/protocol.md A.1).

The binary comes from ``LYNKR_CLAUDE_BIN`` or from ``scripts/install-claude-code`` (npm into
``.ci/node``, or ``LYNKR_CI_NODE_PREFIX``). If it is missing, the test runs the install
script; it skips only when the script reports that the npm registry is unreachable (exit
code 3), and fails otherwise.

`test_claude_code_against_the_fake_directly` is a control: the same CLI talking straight to
the fake upstream. When it passes and the lynkr tests fail, the fault is lynkr's.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic_upstream import FakeAnthropic, Recorded, text, tool_use

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-claude-code"
UPSTREAM_KEY = "upstream-secret-key"
PROVIDER_MODEL = "fake-model-1"
CLI_TIMEOUT = 60
REGISTRY_UNREACHABLE = 3


def _installed_binary() -> Path | None:
    explicit = os.environ.get("LYNKR_CLAUDE_BIN")
    if explicit:
        return Path(explicit)
    prefix = Path(os.environ.get("LYNKR_CI_NODE_PREFIX") or REPO / ".ci" / "node")
    packages = prefix / "node_modules" / "@anthropic-ai"
    for candidate in sorted(packages.glob("claude-code-*/claude")):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    found = _installed_binary()
    if found is not None:
        if not (found.is_file() and os.access(found, os.X_OK)):
            pytest.fail(f"LYNKR_CLAUDE_BIN={found} is not an executable file", pytrace=False)
        return found
    try:
        done = subprocess.run(
            [str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/install-claude-code took longer than 300 s", pytrace=False)
    if done.returncode == REGISTRY_UNREACHABLE:
        reason = (
            f"Claude Code not installed and the npm registry is unreachable: {done.stderr.strip()}"
        )
        print(reason)
        pytest.skip(reason)
    if done.returncode != 0:
        pytest.fail(
            f"scripts/install-claude-code failed ({done.returncode}):\n{done.stderr}", pytrace=False
        )
    return Path(done.stdout.strip().splitlines()[-1])


def run_claude(
    claude_bin: Path, base_url: str, tmp_path: Path, *args: str, extra_env: Mapping[str, str] = {}
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`claude -p ...` headless against `base_url`; returns the process and its JSON result."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "dummy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        **extra_env,
    }
    command = [str(claude_bin), "-p", *args, "--output-format", "json"]
    try:
        done = subprocess.run(
            command,
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"claude did not finish within {CLI_TIMEOUT} s: {exc.stderr!r}", pytrace=False)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except ValueError:
        result = {}
    return done, result


def describe(done: subprocess.CompletedProcess[str], fake: FakeAnthropic) -> str:
    seen = [(r.method, r.path, r.scenario) for r in fake.requests]
    return (
        f"exit {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}\n"
        f"fake saw: {seen}"
    )


def system_texts(record: Recorded) -> list[str]:
    system = record.body.get("system") or []
    if isinstance(system, str):
        return [system]
    return [block.get("text", "") for block in system]


def tool_results(record: Recorded) -> list[dict[str, Any]]:
    found = []
    for message in record.body.get("messages", []):
        if isinstance(message.get("content"), list):
            found += [b for b in message["content"] if b.get("type") == "tool_result"]
    return found


# --------------------------------------------------------------------------- control


def test_claude_code_against_the_fake_directly(
    claude_bin: Path, fake: FakeAnthropic, tmp_path: Path
) -> None:
    fake.default = text("LYNKR_DIRECT_HELLO")
    done, result = run_claude(claude_bin, fake.url, tmp_path, "say hi")
    assert done.returncode == 0, describe(done, fake)
    assert "LYNKR_DIRECT_HELLO" in result.get("result", ""), describe(done, fake)
    assert fake.last_message_request().header("x-api-key") == "dummy"


def test_claude_code_tool_round_trip_against_the_fake_directly(
    claude_bin: Path, fake: FakeAnthropic, tmp_path: Path
) -> None:
    fake.script(tool_use("echo LYNKR_TOOL_OK", tool_id="toolu_direct_1"), text("Direct done."))
    done, result = run_claude(
        claude_bin, fake.url, tmp_path, "run echo LYNKR_TOOL_OK", "--allowedTools", "Bash"
    )
    assert done.returncode == 0, describe(done, fake)
    assert "Direct done." in result.get("result", ""), describe(done, fake)
    results = [r for record in fake.message_requests()[1:] for r in tool_results(record)]
    assert any("LYNKR_TOOL_OK" in json.dumps(r.get("content")) for r in results), results


# --------------------------------------------------------------------------- through lynkr


def test_claude_code_says_hi_through_lynkr(
    claude_bin: Path, fake: FakeAnthropic, lynkr_url: str, tmp_path: Path
) -> None:
    fake.default = text("LYNKR_E2E_HELLO from the fake upstream")
    done, result = run_claude(claude_bin, lynkr_url, tmp_path, "say hi")
    assert done.returncode == 0, describe(done, fake)
    assert result.get("is_error") is False, describe(done, fake)
    assert "LYNKR_E2E_HELLO" in result.get("result", ""), describe(done, fake)

    requests = fake.message_requests()
    assert requests, describe(done, fake)
    for record in requests:
        assert record.header("x-api-key") == UPSTREAM_KEY, record.headers
        assert record.header("authorization") is None
        assert "dummy" not in record.headers.values()
        assert record.body["model"] == PROVIDER_MODEL
        assert "beta=true" not in record.query
        assert not any("x-anthropic-billing-header" in t for t in system_texts(record))
        assert any("Claude" in t for t in system_texts(record))  # the rest of the system stays


def test_claude_code_tool_round_trip_through_lynkr(
    claude_bin: Path, fake: FakeAnthropic, lynkr_url: str, tmp_path: Path
) -> None:
    fake.script(
        tool_use("echo LYNKR_TOOL_OK", tool_id="toolu_cc_e2e_1"),
        text("The command printed LYNKR_TOOL_OK. Done."),
    )
    fake.default = text("unexpected extra request")
    done, result = run_claude(
        claude_bin, lynkr_url, tmp_path, "run echo LYNKR_TOOL_OK", "--allowedTools", "Bash"
    )
    assert done.returncode == 0, describe(done, fake)
    assert "Done." in result.get("result", ""), describe(done, fake)

    requests = fake.message_requests()
    assert len(requests) >= 2, describe(done, fake)
    results = [r for record in requests[1:] for r in tool_results(record)]
    assert results, describe(done, fake)
    ours = [r for r in results if r.get("tool_use_id") == "toolu_cc_e2e_1"]
    assert ours, results
    assert "LYNKR_TOOL_OK" in json.dumps(ours[0].get("content")), ours
    assert not ours[0].get("is_error"), ours
    assert all(record.header("x-api-key") == UPSTREAM_KEY for record in requests)
