"""The stream relay: chunks go out as they come, pings fill silences between frames only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lynkr.agent.stream import PING_FRAME, relay_stream
from lynkr.errors import UpstreamError

pytestmark = pytest.mark.anyio


async def run(chunks: AsyncIterator[bytes], ping_interval: float) -> list[bytes]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await relay_stream(send, chunks, ping_interval=ping_interval)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    return [m["body"] for m in sent[:-1]]


async def paced(*steps: bytes | float) -> AsyncIterator[bytes]:
    for step in steps:
        if isinstance(step, float):
            await asyncio.sleep(step)
        else:
            yield step


async def test_chunks_are_sent_one_by_one_untouched() -> None:
    out = await run(
        paced(b"event: a\ndata: {}\n\n", b"event: b\nda", b"ta: {}\n\n"), ping_interval=0
    )
    assert out == [b"event: a\ndata: {}\n\n", b"event: b\nda", b"ta: {}\n\n"]


async def test_silence_between_frames_is_filled_with_pings() -> None:
    out = await run(paced(b"event: a\ndata: {}\n\n", 0.35, b"event: b\ndata: {}\n\n"), 0.1)
    assert out[0] == b"event: a\ndata: {}\n\n"
    assert out[-1] == b"event: b\ndata: {}\n\n"
    pings = out[1:-1]
    assert pings and all(p == PING_FRAME for p in pings)


async def test_no_ping_inside_a_frame() -> None:
    out = await run(paced(b"event: a\nda", 0.35, b"ta: {}\n\n"), 0.1)
    assert out == [b"event: a\nda", b"ta: {}\n\n"]


async def test_a_failure_after_the_start_becomes_an_error_frame() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"event: a\ndata: {}\n\n"
        raise UpstreamError("provider 'x' closed the connection")

    out = await run(failing(), 0)
    assert out[1].startswith(b"event: error\ndata: ")
    assert b"provider 'x' closed the connection" in out[1]
