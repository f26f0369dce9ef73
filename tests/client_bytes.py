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
# How long the relay keeps reading a client whose server side already closed.
_LINGER_SECONDS = 5.0


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
    """Listens on a free loopback port and relays to `target_port`, recording the answers.

    Every connection's writers are tracked so `stop()` closes them all: a test that
    leaves a keep-alive connection open must not leave a socket for the garbage
    collector to find (and warn about) during a later test.
    """

    def __init__(self, target_port: int, record: Path) -> None:
        self.target_port = target_port
        self.record = record
        self.port = 0
        self._server: asyncio.Server | None = None
        self._out = record.open("ab")
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> RecordingRelay:
        loop = _Loop.get()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            loop = _Loop.get()
            asyncio.run_coroutine_threadsafe(self._close(server), loop).result(10)
        self._out.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client_out)
        lynkr_out: asyncio.StreamWriter | None = None
        try:
            lynkr_in, lynkr_out = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.add(lynkr_out)
            await asyncio.gather(
                _pump(client_in, lynkr_out, None, linger=True),
                _pump(lynkr_in, client_out, self._out),
            )
        except OSError:
            pass  # lynkr is not listening (stopped, or not yet up): the client sees a reset
        finally:
            for writer in (lynkr_out, client_out):
                if writer is not None:
                    await _shut(writer)
                    self._writers.discard(writer)
            self._tasks.discard(task)

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        for writer in list(self._writers):
            await _shut(writer)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


async def _shut(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 2)


async def _pump(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    record: object | None,
    *,
    linger: bool = False,
) -> None:
    """Copy `source` to `sink` as it arrives. With `linger` (the client's side), once lynkr
    has gone (it answered early, e.g. a 413 before the body ended) the rest of what the
    client sends is read and dropped until it stops: closing with unread data would reset
    the connection and could destroy the answer the client has not read yet."""
    try:
        while chunk := await source.read(_CHUNK):
            if record is not None:
                with contextlib.suppress(ValueError):  # the record closed at stop()
                    record.write(chunk)  # type: ignore[attr-defined]
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError, RuntimeError):
        if linger:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_discard(source), _LINGER_SECONDS)
    finally:
        with contextlib.suppress(Exception):
            if sink.can_write_eof():
                sink.write_eof()
            else:
                sink.close()


async def _discard(source: asyncio.StreamReader) -> None:
    while await source.read(_CHUNK):
        pass
