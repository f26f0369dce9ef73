"""`lynkr serve` under uvicorn: uvloop, httptools, and lynkr's bounded protocol."""

from __future__ import annotations

from typing import Any

from lynkr.serving.protocol import HeadLimits, bounded_protocol

__all__ = ["run_uvicorn"]


def run_uvicorn(
    app: Any,
    host: str,
    port: int,
    log_level: str,
    *,
    limits: HeadLimits,
    keep_alive_seconds: float,
) -> int:
    """Serve `app` until stopped; a graceful stop lets streams finish for 10 s."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        http=bounded_protocol(limits),
        lifespan="on",
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_keep_alive=keep_alive_seconds,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=10,
    )
    return 0
