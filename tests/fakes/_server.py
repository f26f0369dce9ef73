"""The machinery shared by the fake upstreams (Anthropic, OpenAI, Ollama).

`FakeServer` runs the fake as an ASGI app under uvicorn in a background thread, on a free
loopback port. It records every request (`Recorded`), keeps a queue of scripted scenarios
(`script`, `next_scenario`, `default`), counts the responses sent to their end and the
clients that went away before (`completed`, `disconnects`, `wait_for_disconnects`), and
plays a response while watching for the client's disconnect (`play`, `send_steps`,
`send_json_answer`). Subclasses only route requests (`handle`) and build their default
scenario (`default_scenario`).

The steps every dialect shares (`Raw`, `Sleep`, `Cut`) and the pure helpers (`respond`,
`header_list`, `pieces`, `rechunk`) live here too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import uvicorn

__all__ = [
    "Cut",
    "CutConnection",
    "FakeServer",
    "Raw",
    "Recorded",
    "Sleep",
    "header_list",
    "pieces",
    "rechunk",
    "respond",
    "respond_json",
]


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause the response for `seconds` (the client's disconnect is still noticed)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes sent as they are (malformed frames, comments...)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Cut:
    """Close the connection now, without ending the chunked body."""


class CutConnection(Exception):
    """Raised by the app to make uvicorn drop the connection in the middle of a body."""


# --------------------------------------------------------------------------- recording


@dataclass(slots=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    raw_headers: list[tuple[str, str]]
    raw_body: bytes
    body: Any  # parsed JSON, or None
    scenario: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def route(self) -> str:
        """The path without its provider prefix: /v1/messages, /v1/messages/count_tokens..."""
        index = self.path.find("/v1/")
        return self.path[index:] if index >= 0 else self.path


# --------------------------------------------------------------------------- the server


class FakeServer:
    """Server machinery shared by the fakes: uvicorn on a free loopback port in a thread,
    a scenario queue, request recording and disconnect accounting.

    Subclasses implement `handle(record, receive, send)` and `default_scenario()`; they may
    extend `restore_defaults()` (called by `reset`, under the lock).
    """

    kind = "fake"  # the thread name prefix
    title = ""  # how the start-up error names the fake (`kind` if empty)

    def __init__(self, *, default: Any = None) -> None:
        self.default = default if default is not None else self.default_scenario()
        self.requests: list[Recorded] = []
        self.url = ""
        self.port = 0
        self._queue: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._disconnects = 0
        self._completed = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def default_scenario(self) -> Any:
        raise NotImplementedError

    async def handle(self, record: Recorded, receive: Any, send: Any) -> None:
        raise NotImplementedError

    def restore_defaults(self) -> None:
        """Put the settings a test may change back (`reset` calls it under the lock)."""
        self.default = self.default_scenario()

    # ------------------------------------------------------------------ test API

    def script(self, *scenarios: Any) -> None:
        """Queue answers for the next model requests (then `default` again)."""
        with self._lock:
            self._queue.extend(scenarios)

    def reset(self) -> None:
        """Forget queued scenarios, recorded requests and counters; restore the defaults."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self._disconnects = 0
            self._completed = 0
            self.restore_defaults()

    @property
    def pending(self) -> int:
        """Scenarios still queued."""
        with self._lock:
            return len(self._queue)

    @property
    def disconnects(self) -> int:
        """Responses the client abandoned before their end."""
        with self._lock:
            return self._disconnects

    @property
    def completed(self) -> int:
        """Model responses sent to their end (error responses included)."""
        with self._lock:
            return self._completed

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until at least `count` disconnects were seen; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._disconnects >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.requests) >= count, timeout)

    def requests_where(self, method: str, matches: Callable[[Recorded], bool]) -> list[Recorded]:
        """The recorded `method` requests whose `Recorded` satisfies `matches`, in order."""
        with self._lock:
            return [r for r in self.requests if r.method == method and matches(r)]

    def last_of(self, found: list[Recorded], complaint: str) -> Recorded:
        """The last of `found` (the fake's model requests); fails with `complaint` if none."""
        assert found, f"{complaint}: {self.requests!r}"
        return found[-1]

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="critical",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)

        def run() -> None:
            assert self._server is not None
            try:
                self._server.run(sockets=[sock])
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"{self.kind}-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.title or self.kind} upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self._stopping is None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
        raw_body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw_body += message.get("body", b"")
            if not message.get("more_body"):
                break
        record = self._record(scope, bytes(raw_body))
        await self.handle(record, receive, send)

    def _record(self, scope: Mapping[str, Any], raw_body: bytes) -> Recorded:
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        record = Recorded(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            raw_headers=raw_headers,
            raw_body=raw_body,
            body=body,
        )
        with self._changed:
            self.requests.append(record)
            self._changed.notify_all()
        return record

    def next_scenario(self) -> Any:
        """The next queued scenario, or (a copy of) `default` when the queue is empty."""
        with self._lock:
            chosen = self._queue.popleft() if self._queue else self.default
        return copy.deepcopy(chosen)

    def count(self, *, disconnect: bool) -> None:
        with self._changed:
            if disconnect:
                self._disconnects += 1
            else:
                self._completed += 1
            self._changed.notify_all()

    async def play(self, sender: Coroutine[Any, Any, None], receive: Any) -> None:
        """Run the coroutine `sender`, racing it against the client's disconnect."""
        gone = asyncio.Event()

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()

        watcher = asyncio.create_task(watch())
        player = asyncio.create_task(sender)
        assert self._stopping is not None
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            waiter = asyncio.create_task(gone.wait())
            done, _ = await asyncio.wait(
                {player, waiter, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            if player in done:
                player.result()  # re-raises a Cut, which makes uvicorn close the connection
            elif waiter in done:
                self.count(disconnect=True)
        finally:
            for task in (watcher, player, stopping):
                task.cancel()
            await asyncio.gather(watcher, player, stopping, return_exceptions=True)

    async def open_answer(
        self, scenario: Any, record: Recorded, send: Any, playable: Any
    ) -> dict[str, Any] | None:
        """The common start of a model answer: wait the scenario's `headers_delay`, then send
        a scenario with a `json_body` (or with neither `playable` content nor `steps`) whole.
        Returns the request's JSON object when the scenario is still to be played, None when
        it was answered."""
        if scenario.headers_delay:
            await asyncio.sleep(scenario.headers_delay)
        if scenario.json_body is not None or (playable is None and scenario.steps is None):
            await self.send_json_answer(send, scenario.status, scenario.json_body, scenario.headers)
            return None
        return record.body if isinstance(record.body, dict) else {}

    async def send_json_answer(
        self, send: Any, status: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        """A whole JSON model answer (counted as completed before it is sent)."""
        self.count(disconnect=False)
        await respond(send, status, json.dumps(body).encode(), "application/json", headers)

    async def send_steps(
        self,
        send: Any,
        steps: Sequence[Any],
        *,
        status: int,
        content_type: str,
        headers: Mapping[str, str],
        event_delay: float = 0.0,
    ) -> None:
        """Start a streamed response and play `steps` (anything with `encode()`, `Raw`,
        `Sleep`, `Cut`)."""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": header_list(content_type, headers),
            }
        )
        for position, step in enumerate(steps):
            if position and event_delay:
                await asyncio.sleep(event_delay)
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Cut):
                raise CutConnection  # uvicorn closes the transport mid-body
            else:
                data = step.data if isinstance(step, Raw) else step.encode()
                await send({"type": "http.response.body", "body": data, "more_body": True})
        # Counted before the last send, so a client that saw the end sees the count too.
        self.count(disconnect=False)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# --------------------------------------------------------------------------- pure helpers


def header_list(content_type: str, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    result = [(b"content-type", content_type.encode())]
    result += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return result


async def respond(
    send: Any,
    status: int,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """A whole response with a content-length (not counted: for non-model routes)."""
    all_headers = header_list(content_type, headers or {})
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def respond_json(send: Any, status: int, body: Any) -> None:
    await respond(send, status, json.dumps(body).encode(), "application/json")


def pieces(text: str, size: int = 6) -> list[str]:
    """`text` cut into pieces of `size` characters (at least one, maybe empty)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def rechunk(steps: Sequence[Any], sizes: tuple[int, ...]) -> list[Raw | Sleep]:
    """The bytes of `steps` (those with `encode()` and `Raw`), regrouped into chunks of
    `sizes` (cycled) with tiny pauses."""
    data = b"".join(
        s.data if isinstance(s, Raw) else s.encode()
        for s in steps
        if not isinstance(s, Sleep | Cut)
    )
    out: list[Raw | Sleep] = []
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        out.append(Raw(data[position : position + size]))
        out.append(Sleep(0.002))
        position += size
        turn += 1
    return out
