"""uvicorn's HTTP/1.1 protocol with the bounds a client must not be able to step past.

uvicorn limits a kept-alive idle connection (`timeout_keep_alive`) and, with
`limit_concurrency`, answers 503 once too many are open, but only after a
request's head has arrived. Before that, nothing is bounded: a client may open
thousands of connections that never send a byte, or send a head of hundreds of
megabytes a byte at a time (httptools buffers every header until it ends).
This protocol closes both doors before any of lynkr runs:

* **connections** — past `max_connections` open ones, a new connection gets a
  503 and is closed at once;
* **head size** — once a request head passes `max_header_bytes`, 431 and close;
* **head time** — a head not complete `header_timeout` seconds after the
  connection opened (or after its previous response ended and its next
  request began) gets 408 and is closed.

Each refusal is a tiny plain-text answer written straight to the socket (the
client has not said what API it speaks yet) and a warning in the log naming
the client's address, never its bytes.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeadLimits", "bounded_protocol"]

_log = logging.getLogger("lynkr.serving")

_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """What one client may hold before its request is read (`server.limits`)."""

    max_connections: int = 1024
    max_header_bytes: int = 65536
    header_timeout: float = 10.0


def bounded_protocol(limits: HeadLimits) -> type[asyncio.Protocol]:
    """An HTTP protocol class for uvicorn's `http=` that enforces `limits`."""
    return type("BoundedHttpToolsProtocol", (_BoundedProtocol,), {"limits": limits})


class _BoundedProtocol(HttpToolsProtocol):
    limits = HeadLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bytes of the request head read so far; None while no head is being read.
        self._head_bytes: int | None = 0
        self._head_timer: TimerHandle | None = None
        # Whether the last request's body has been read to its end: until then, bytes that
        # arrive after an early answer (a 413 sent on content-length) are still that body,
        # not the head of a next request.
        self._body_done = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too many open connections")
            return
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is None and self._idle():
            self._start_head()  # a kept-alive connection's next request begins
        counting = self._head_bytes is not None
        super().data_received(data)
        if counting and self._head_bytes is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431, f"a request head over {self.limits.max_header_bytes} bytes")

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._body_done = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_done = True
        super().on_message_complete()

    def _idle(self) -> bool:
        """Whether no request is in flight: the next bytes start a new head."""
        return self._body_done and (self.cycle is None or self.cycle.response_complete)

    def _start_head(self) -> None:
        self._head_bytes = 0
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._head_bytes is not None:
            self._refuse(408, f"no whole request head within {self.limits.header_timeout:g} s")

    def _refuse(self, status: int, why: str) -> None:
        self._head_bytes = None
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        _log.warning("closing the connection of %s: %s (server.limits)", client, why)
        body = f"{why}; see server.limits in lynkr.yaml\n".encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()
