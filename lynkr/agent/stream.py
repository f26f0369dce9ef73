"""Relaying an Anthropic SSE stream to the client, chunk by chunk, with keep-alive pings.

Chunks are sent the moment they arrive, never gathered. While the upstream is
silent (a local model prefilling a long prompt can think for minutes), an
`event: ping` frame goes out every `ping_interval` seconds so that nothing
between lynkr and the client mistakes the silence for a dead connection
(docs/protocol.md A.9, B.5 rule 10). A ping is only ever sent between two frames:
relayed bytes may stop in the middle of one.

After the response started, a failure can only be told in the stream: it
becomes an Anthropic `event: error` frame, then the end of the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import structlog

from lynkr.asgi import Send, sse_error_frame
from lynkr.errors import LynkrError

__all__ = ["PING_FRAME", "UNEXPECTED", "relay_stream"]

_log = structlog.get_logger("lynkr.agent")
UNEXPECTED = (
    "lynkr failed unexpectedly while answering; the details are in its log. "
    "Retry the request; if it keeps failing, report it with the request-id."
)

PING_FRAME = b'event: ping\ndata: {"type": "ping"}\n\n'


async def relay_stream(send: Send, chunks: AsyncIterator[bytes], *, ping_interval: float) -> None:
    """Send every chunk as an ASGI body message, pinging while idle; end the response."""
    # asyncio's Lock takes no trip through the event loop when free (anyio's does, per
    # chunk): a relayed chunk goes out in the same loop iteration it arrived in.
    lock = asyncio.Lock()
    last_sent = time.monotonic()
    between_frames = False

    async def emit(data: bytes) -> None:
        nonlocal last_sent, between_frames
        async with lock:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        last_sent = time.monotonic()
        between_frames = data.endswith(b"\n\n")

    async def keep_alive() -> None:
        while True:
            wait = last_sent + ping_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif between_frames:
                await emit(PING_FRAME)
            else:
                await asyncio.sleep(ping_interval)  # mid-frame: not now, and no busy loop

    pinger = asyncio.get_running_loop().create_task(keep_alive()) if ping_interval > 0 else None
    try:
        async for chunk in chunks:
            await emit(chunk)
    except LynkrError as error:
        await emit(sse_error_frame(error.error_type, error.message))
    except Exception:
        _log.exception("relay_failed")
        await emit(sse_error_frame("api_error", UNEXPECTED))
    finally:
        if pinger is not None:
            pinger.cancel()
            await asyncio.wait([pinger])  # a ping being sent is finished before the end
            if not pinger.cancelled() and pinger.exception() is not None:
                _log.warning("keep_alive_failed", error=repr(pinger.exception()))
    await send({"type": "http.response.body", "body": b"", "more_body": False})
