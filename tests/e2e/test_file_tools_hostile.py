"""A hostile model driving lynkr's file tools through a real `lynkr serve`.

The workspace is the config's own folder (as the README lays it out), with the
shipped default policy in `policies/` next to `lynkr.yaml`: the model tries to
rewrite both, to read and overwrite a file outside through a hard link, and
to hang the server with a FIFO.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, text, tool_use

pytestmark = pytest.mark.e2e


def _server(lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic) -> LynkrServer:
    tools = {
        "execution": "server",
        "workspace": {"root": "."},
        "policy": str(REPO / "policies" / "default.yaml"),
        "enabled": ["files"],
    }
    return lynkr_server("hostile-files", extra={"tools": tools})


def _run(server: LynkrServer, fake: FakeAnthropic, *calls: tuple[str, dict[str, Any]]) -> list[str]:
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
        content = block["content"]
        results.append(content if isinstance(content, str) else json.dumps(content))
    return results


def test_lynkr_s_config_and_data_cannot_be_read_or_rewritten(
    lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic
) -> None:
    server = _server(lynkr_server, fake)
    config = server.config_path.read_text()
    results = _run(
        server,
        fake,
        ("lynkr_file_read", {"file_path": "lynkr.yaml"}),
        ("lynkr_file_write", {"file_path": "lynkr.yaml", "content": "version: 1\n"}),
        ("lynkr_file_write", {"file_path": "data/evil.txt", "content": "x"}),
        ("lynkr_file_glob", {"pattern": "**/*"}),
    )
    assert server.config_path.read_text() == config
    assert not (server.log_dir / "data" / "evil.txt").exists()
    for refused in results[:3]:
        assert "one of lynkr's own files" in refused, refused
    assert "lynkr.yaml" not in results[3] and "data/" not in results[3]


def test_hard_links_and_fifos_are_refused(
    lynkr_server: Callable[..., LynkrServer], fake: FakeAnthropic, tmp_path: Path
) -> None:
    server = _server(lynkr_server, fake)
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("the secret outside\n")
    link = server.log_dir / "innocent.txt"
    fifo = server.log_dir / "pipe"
    os.link(outside, link)
    os.mkfifo(fifo)
    try:
        results = _run(
            server,
            fake,
            ("lynkr_file_read", {"file_path": "innocent.txt"}),
            ("lynkr_file_write", {"file_path": "innocent.txt", "content": "overwritten"}),
            ("lynkr_file_read", {"file_path": "pipe"}),
            ("lynkr_file_grep", {"pattern": "secret", "path": "pipe"}),
            ("lynkr_file_grep", {"pattern": "secret"}),
        )
        assert outside.read_text() == "the secret outside\n"  # neither read nor overwritten
        assert "other hard links" in results[0] and "the secret outside" not in results[0]
        assert "other hard links" in results[1]
        assert "not a regular file" in results[2]
        assert all("the secret outside" not in r for r in results[3:]), results[3:]
    finally:
        link.unlink(missing_ok=True)
        fifo.unlink(missing_ok=True)
        shutil.rmtree(tmp_path, ignore_errors=True)
