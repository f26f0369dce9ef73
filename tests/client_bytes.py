"""A recording loopback relay in front of each `lynkr serve` the suite starts.

Tests talk to `LynkrServer.url`, which is this relay's port; it forwards every
byte both ways as it arrives (never buffering a stream) and appends what lynkr
sent back to a file beside the server's logs. When the server stops, the suite
scans that file, and the logs, for every configured secret (`conftest.py`,
`leaked_secrets`): what a client could see is checked for every test, not only
for the tests about secrets. Raw-socket tests that probe lynkr's own HTTP
handling use `LynkrServer.port` and reach lynkr directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

__all__ = ["RecordingRelay"]

_CHUNK = 65536


class _Loop:
    """One daemon thread running the event loop every relay shares."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="client-bytes-relay", daemon=True
                ).start()
                cls._loop = loop
            return cls._loop


class RecordingRelay:
    """Listens on a free loopback port and relays to `target_port`, recording the answers."""

    def __init__(self, target_port: int, record: Path) -> None:
        self.target_port = target_port
        self.record = record
        self.port = 0
        self._server: asyncio.Server | None = None
        self._out = record.open("ab")

    def start(self) -> RecordingRelay:
        loop = _Loop.get()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            loop = _Loop.get()
            asyncio.run_coroutine_threadsafe(_close(server), loop).result(10)
        self._out.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            lynkr_in, lynkr_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_out.close()
            return
        try:
            await asyncio.gather(
                _pump(client_in, lynkr_out, None), _pump(lynkr_in, client_out, self._out)
            )
        finally:
            for writer in (lynkr_out, client_out):
                writer.close()


async def _pump(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: object | None
) -> None:
    try:
        while chunk := await source.read(_CHUNK):
            if record is not None:
                record.write(chunk)  # type: ignore[attr-defined]
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if sink.can_write_eof():
                sink.write_eof()
            else:
                sink.close()


async def _close(server: asyncio.Server) -> None:
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)
