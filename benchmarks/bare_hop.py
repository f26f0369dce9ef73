"""The bare proxy hop lynkr is measured against: raw ASGI + one shared aiohttp session.

    python benchmarks/bare_hop.py PORT UPSTREAM_URL

Reads the request body, POSTs it unchanged to ``UPSTREAM_URL + path`` through one
`aiohttp.ClientSession` (keep-alive pool of 512), and relays the answer chunk by chunk as it
arrives (`iter_any`). No parsing, no validation, no middleware: the cheapest correct Python
hop: uvicorn + httptools + uvloop with one aiohttp session. The throughput target at c=50
is a fraction of this hop's.
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp

UPSTREAM = sys.argv[2].rstrip("/") if len(sys.argv) > 2 else "http://127.0.0.1:9001"
_FORWARD = (
    b"content-type",
    b"x-api-key",
    b"authorization",
    b"anthropic-version",
    b"anthropic-beta",
)
_session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] != "http":
        return
    if _session is None:
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512), auto_decompress=False, trust_env=False
        )
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in _FORWARD}
    url = UPSTREAM + scope["path"]
    async with _session.post(url, data=b"".join(chunks), headers=headers) as upstream:
        kind = upstream.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status,
                "headers": [(b"content-type", kind)],
            }
        )
        async for chunk in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
    )
