"""A real `lynkr serve` in front of an upstream that answers anything.

* An unterminated SSE line, gzip-compressed so that 64 MiB cost the upstream
  a few kilobytes: lynkr stops the stream at its frame cap with an `error`
  event, in linear time, without holding the line.
* An answer bigger than `sessions.max_answer_bytes`: the client gets every
  byte, the session keeps the turn without the answer, and says so in the log.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LynkrServer
from fakes._server import Raw
from fakes.anthropic_upstream import Event, FakeAnthropic, text

pytestmark = pytest.mark.e2e

BODY = {
    "model": "claude-x",
    "max_tokens": 10,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}
MIB = 1024 * 1024


def _peak_rss_mib(server: LynkrServer) -> float:
    """The lynkr process's peak resident memory so far (VmHWM), in MiB."""
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def _gzip_line_scenario(megabytes: int) -> Any:
    """message_start, then one `data:` line of `megabytes` MiB that never ends, gzipped."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)

    def packed(data: bytes) -> Raw:
        return Raw(packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH))

    first = text("unused").stream_steps("claude-x")[0]
    block = b"x" * MIB
    steps = [packed(first.encode()), packed(b"event: content_block_delta\ndata: ")]
    steps += [packed(block) for _ in range(megabytes)]
    steps.append(Raw(packer.flush()))
    scenario = text("unused", headers={"content-encoding": "gzip"})
    scenario.steps, scenario.name = steps, "gzip_endless_line"
    return scenario


def _big_answer_scenario(answer: str) -> Any:
    """A valid streamed text answer whose text comes in three big deltas."""
    steps = text("unused").stream_steps("claude-x")
    at = next(
        i for i, step in enumerate(steps) if getattr(step, "name", "") == "content_block_delta"
    )
    third = len(answer) // 3
    parts = [answer[:third], answer[third : 2 * third], answer[2 * third :]]
    deltas = [
        Event(
            "content_block_delta", {**steps[at].data, "delta": {"type": "text_delta", "text": part}}
        )
        for part in parts
    ]
    rest = [step for step in steps[at:] if getattr(step, "name", "") != "content_block_delta"]
    scenario = text("unused")
    scenario.steps, scenario.name = [*steps[:at], *deltas, *rest], "big_answer"
    return scenario


def test_an_endless_compressed_line_is_cut_at_the_frame_cap(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = lynkr_server("hostile-line")
    fake.script(_gzip_line_scenario(64))
    before = _peak_rss_mib(server)
    with (
        httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client,
        client.stream("POST", "/v1/messages", json=BODY) as response,
    ):
        received = b"".join(response.iter_bytes())
    assert response.status_code == 200
    assert b"event: error" in received, received[-500:]
    assert b"longer than 16,777,216 bytes" in received
    assert len(received) < MIB  # the endless line never reached the client
    # The line was never held whole: 64 MiB sent, far less kept at the peak.
    assert _peak_rss_mib(server) - before < 48, (before, _peak_rss_mib(server))
    with httpx.Client(timeout=5, trust_env=False) as client:  # and the server is fine
        assert client.get(f"{server.url}/health").status_code == 200


def test_an_answer_over_the_recording_cap_reaches_the_client_but_not_the_session(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]
) -> None:
    server = lynkr_server("hostile-size", extra={"sessions": {"max_answer_bytes": MIB}})
    answer = "y" * (3 * MIB)
    fake.script(_big_answer_scenario(answer))
    headers = {"x-claude-code-session-id": "big-answer"}
    with (
        httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client,
        client.stream("POST", "/v1/messages", json=BODY, headers=headers) as response,
    ):
        received = b"".join(response.iter_bytes())
    assert response.status_code == 200
    deltas = [
        json.loads(line[6:])["delta"].get("text", "")
        for line in received.split(b"\n")
        if line.startswith(b"data: ") and b"content_block_delta" in line
    ]
    assert "".join(deltas) == answer and b"event: message_stop" in received
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=server.url, timeout=5, trust_env=False) as client:
        while True:
            session = client.get("/v1/lynkr/sessions/big-answer")
            if session.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert session.status_code == 200, session.text
    (turn,) = session.json()["turns"]
    assert turn["answer"] is None  # the request is kept, the 3 MiB answer is not
    log = server.stderr_text(limit=10**6)
    assert "session_answer_not_recorded" in log
    assert "max_answer_bytes" in log
