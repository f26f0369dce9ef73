"""Which upstream HTTP client should lynkr use? The same minimal proxy hop, one per client.

    .venv/bin/python benchmarks/clients.py [--seconds 3] [--rounds 3] [--json clients.json]

Starts a fake Anthropic upstream (uvicorn + httptools + uvloop, its own process)
and one proxy hop per client (a pure-ASGI app under uvicorn + httptools + uvloop
that forwards the POST body to the upstream and relays the answer chunk by
chunk), then drives direct and proxied rounds interleaved — every target once
per round, >= 3 rounds, at concurrency 1, 10 and 50, non-streaming and SSE.
Per row: requests per second (median of rounds, min-max), p50/p99 (median of
the rounds'), errors, and the hop process's CPU milliseconds per request from
/proc (all rounds pooled: the steadiest number on a noisy 2-core box).

Clients (each skipped with a note when its package is missing):
  httpx          stock httpx.AsyncClient (httpcore; `sniffio` installed or not is printed)
  httpx2         pydantic's httpx2 fork (httpcore2), same API
  httpx-aiohttp  httpx's API over aiohttp (`httpx-aiohttp`, the anthropic/openai SDK backend)
  aiohttp        aiohttp.ClientSession directly (lynkr/providers/http.py today)
  pyreqwest      Rust reqwest/hyper behind an asyncio API

Loopback only; every process it starts is stopped by its pid. The helpers here
(upstream, process start, load generator, /proc readings) are shared with
benchmarks/servers.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
# A sanitised recording of a request the real Claude Code CLI sent (long strings cut).
SAMPLE = ROOT / "tests" / "middleware" / "data" / "claude-code-request-sample.json"
CLIENTS = ("httpx", "httpx2", "httpx-aiohttp", "aiohttp", "pyreqwest")
MODULES = {
    "httpx": "httpx",
    "httpx2": "httpx2",
    "httpx-aiohttp": "httpx_aiohttp",
    "aiohttp": "aiohttp",
    "pyreqwest": "pyreqwest",
}
HEADERS = {
    "content-type": "application/json",
    "x-api-key": "bench",
    "anthropic-version": "2023-06-01",
}

ASGIMessage = dict[str, Any]
Send = Callable[[ASGIMessage], Awaitable[None]]


# The fake upstream -----------------------------------------------------------------------


def _events(deltas: int) -> list[bytes]:
    def frame(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    usage = {"input_tokens": 10, "output_tokens": 1}
    return [
        frame(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "up",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        ),
        frame(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        *[
            frame(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "word "},
                },
            )
            for _ in range(deltas)
        ],
        frame("content_block_stop", {"type": "content_block_stop", "index": 0}),
        frame(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": deltas},
            },
        ),
        frame("message_stop", {"type": "message_stop"}),
    ]


MESSAGE = json.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "up",
        "content": [{"type": "text", "text": "word " * 20}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 20},
    }
).encode()


def run_upstream(port: int, deltas: int) -> None:
    """Anthropic-shaped: JSON, or SSE (one send per event) when the body asks to stream.

    A body containing `PACE_MS=<n>` gets its events n ms apart (for batching checks).
    """
    import uvicorn

    events = _events(deltas)

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if b'"stream":true' not in body and b'"stream": true' not in body:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": MESSAGE})
            return
        pace = 0.0
        if match := re.search(rb"PACE_MS=(\d+)", body):
            pace = int(match.group(1)) / 1000
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for index, event in enumerate(events):
            if pace and index:
                await asyncio.sleep(pace)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
        lifespan="off",
    )


# The proxy hop, one per client -----------------------------------------------------------

Relay = Callable[[bytes, dict[str, str], Send], Awaitable[None]]


async def _start(send: Send, status: int, content_type: str | None) -> None:
    headers = [(b"content-type", content_type.encode("latin-1"))] if content_type else []
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _chunk(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def make_client(name: str, url: str) -> tuple[Relay, Callable[[], Awaitable[Any]]]:
    """`relay(body, headers, send)` forwards one request with client `name`, and its closer."""
    if name in ("httpx", "httpx2", "httpx-aiohttp"):
        if name == "httpx-aiohttp":
            import httpx as mod
            from httpx_aiohttp import HttpxAiohttpClient as client_class
        else:
            mod = __import__(name)
            client_class = mod.AsyncClient
        client = client_class(
            limits=mod.Limits(max_connections=512, max_keepalive_connections=512),
            timeout=mod.Timeout(60.0, connect=5.0),
            trust_env=False,
            follow_redirects=False,
        )

        async def relay_httpx(body: bytes, headers: dict[str, str], send: Send) -> None:
            request = client.build_request("POST", url, content=body, headers=headers)
            response = await client.send(request, stream=True)
            try:
                await _start(send, response.status_code, response.headers.get("content-type"))
                async for data in response.aiter_raw():
                    await _chunk(send, data)
            finally:
                await response.aclose()

        return relay_httpx, client.aclose
    if name == "aiohttp":
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512),
            trust_env=False,
            timeout=aiohttp.ClientTimeout(connect=5.0, sock_read=60.0),
            skip_auto_headers=("User-Agent",),
        )

        async def relay_aiohttp(body: bytes, headers: dict[str, str], send: Send) -> None:
            async with session.request(
                "POST", url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await _start(send, response.status, response.headers.get("content-type"))
                async for data in response.content.iter_any():
                    await _chunk(send, data)

        return relay_aiohttp, session.close
    if name == "pyreqwest":
        from datetime import timedelta

        from pyreqwest.client import ClientBuilder

        reqwest = (
            ClientBuilder()
            .max_connections(512)
            .follow_redirects(False)
            .no_proxy()
            .connect_timeout(timedelta(seconds=5))
            .build()
        )

        async def relay_pyreqwest(body: bytes, headers: dict[str, str], send: Send) -> None:
            request = reqwest.post(url).headers(headers).body_bytes(body).build_streamed()
            async with request as response:
                await _start(send, response.status, response.get_header("content-type"))
                reader = response.body_reader
                while (data := await reader.read_chunk()) is not None:
                    await _chunk(send, bytes(data))

        return relay_pyreqwest, reqwest.close
    raise ValueError(f"unknown client {name!r}")


def run_hop(name: str, port: int, upstream: str) -> None:
    import uvicorn

    state: dict[str, Any] = {}
    url = f"{upstream}/v1/messages"
    forward = ("content-type", "x-api-key", "anthropic-version")

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state["relay"], state["close"] = await make_client(name, url)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await state["close"]()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        wanted = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k.decode("latin-1") in forward
        }
        await state["relay"](b"".join(chunks), wanted, send)
        await send({"type": "http.response.body", "body": b""})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
        lifespan="on",
    )


# Shared harness helpers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (granian serves from a child process)."""
    pids, index = [pid], 0
    while index < len(pids):
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text()
            pids += [int(child) for child in children.split()]
        index += 1
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its descendants."""
    total = 0
    for one in tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Memory of `pid` and its descendants: Pss, so pages shared after a fork count once."""
    total = 0.0
    for one in tree(pid):
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{one}/smaps_rollup").read_text()
            total += next(
                int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")
            )
    return round(total / 1024, 1)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> float:
    """Seconds until GET `url` answers 200 (raises if the process dies or time runs out)."""
    started = time.monotonic()
    import urllib.request

    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}: {err[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return time.monotonic() - started
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready after {timeout:g} s")


@contextlib.contextmanager
def started(
    command: list[str],
    ready_url: str | None = None,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Run `command` until the block ends; yields it and its seconds to ready. Stopped by pid."""
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        if ready_url is not None:
            ready = wait_ready(ready_url, proc)
        else:
            begun = time.monotonic()
            while True:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port or 0), 0.2).close()
                    break
                if proc.poll() is not None or time.monotonic() - begun > 30:
                    raise RuntimeError(f"{command[:4]} did not start")
                time.sleep(0.02)
            ready = time.monotonic() - begun
        yield proc, ready
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def payload(stream: bool, pace_ms: int = 0, *, tiny: bool = False) -> bytes:
    """Claude Code's recorded first request (~26 KB, 24 tools), or a tiny one."""
    body: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if not tiny:
        sample = json.loads(SAMPLE.read_text())["body"]
        body = {k: v for k, v in sample.items() if not k.startswith("_")}
        # The sample lists its 24 tools by name only; give each the recorded Bash schema.
        names = re.findall(r"[A-Za-z]+", str(sample["tools"][0]).split(":", 1)[-1])
        body["tools"] = [dict(sample["_tool_example_Bash"], name=name) for name in names]
    body.pop("stream", None)
    if stream:
        body["stream"] = True
    if pace_ms:
        body["metadata"] = {"user_id": f"bench PACE_MS={pace_ms}"}
    return json.dumps(body).encode()


@dataclass
class Round:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu_s: float | None = None


async def _load(url: str, body: bytes, concurrency: int, seconds: float) -> Round:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # one warm connection per worker before the clock starts
        await asyncio.gather(*(_one(session, url, body) for _ in range(concurrency)))
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                begun = time.perf_counter()
                ok = await _one(session, url, body)
                latencies.append(time.perf_counter() - begun)
                errors += not ok

        begun = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - begun
    return Round(len(latencies), errors, took, latencies)


async def _one(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    try:
        async with session.post(url, data=body, headers=HEADERS) as response:
            await response.read()
            return response.status == 200
    except aiohttp.ClientError:
        return False


def load(url: str, body: bytes, concurrency: int, seconds: float, pid: int | None) -> Round:
    """One closed-loop round; `pid`'s CPU (with children) over the round is recorded."""
    import uvloop

    before = cpu_seconds(pid) if pid else 0.0
    result = uvloop.run(_load(url, body, concurrency, seconds))
    if pid:
        result.cpu_s = cpu_seconds(pid) - before
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Row:
    target: str
    stream: bool
    concurrency: int
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float | None
    rounds: int
    extra: dict[str, Any] = field(default_factory=dict)


def summarise(target: str, stream: bool, concurrency: int, rounds: list[Round]) -> Row:
    rps = [r.requests / r.seconds for r in rounds]
    cpu = [r.cpu_s for r in rounds if r.cpu_s is not None]
    total = sum(r.requests for r in rounds)
    return Row(
        target,
        stream,
        concurrency,
        round(statistics.median(rps)),
        round(min(rps)),
        round(max(rps)),
        round(statistics.median(pct(r.latencies, 0.5) for r in rounds), 2),
        round(statistics.median(pct(r.latencies, 0.99) for r in rounds), 2),
        sum(r.errors for r in rounds),
        round(sum(cpu) * 1000 / total, 3) if cpu and total else None,
        len(rounds),
    )


# The comparison --------------------------------------------------------------------------


def available(name: str) -> bool:
    return importlib.util.find_spec(MODULES[name]) is not None


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in (
        "httpx",
        "httpcore",
        "httpx2",
        "httpcore2",
        "httpx-aiohttp",
        "aiohttp",
        "pyreqwest",
        "sniffio",
        "uvicorn",
        "uvloop",
        "httptools",
    ):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def compare(args: argparse.Namespace) -> list[Row]:
    names = [n for n in args.clients if available(n)]
    for missing in set(args.clients) - set(names):
        print(f"skipping {missing}: not installed (pip install -e '.[bench]')", file=sys.stderr)
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    me = [sys.executable, str(Path(__file__).resolve())]
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(started([*me, "upstream", str(up_port)], port=up_port))
        targets: dict[str, tuple[str, int | None]] = {"direct": (upstream, None)}
        for name in names:
            port = free_port()
            proc, _ = stack.enter_context(
                started([*me, "hop", name, str(port), upstream], port=port)
            )
            targets[name] = (f"http://127.0.0.1:{port}", proc.pid)
        for stream in (False, True):
            body = payload(stream)
            for concurrency in args.concurrency:
                for url, _ in targets.values():  # warm every path
                    load(f"{url}/v1/messages", body, concurrency, 0.3, None)
                rounds: dict[str, list[Round]] = {t: [] for t in targets}
                for index in range(args.rounds):
                    order = list(targets) if index % 2 == 0 else list(reversed(targets))
                    for target in order:
                        url, pid = targets[target]
                        rounds[target].append(
                            load(f"{url}/v1/messages", body, concurrency, args.seconds, pid)
                        )
                for target in targets:
                    row = summarise(target, stream, concurrency, rounds[target])
                    rows.append(row)
                    print(
                        f"  {target:14} stream={stream!s:5} c={concurrency:<3} rps={row.rps:<6}"
                        f" p50={row.p50_ms:<7} p99={row.p99_ms:<8} cpu={row.cpu_ms_per_request}"
                        f" err={row.errors}",
                        file=sys.stderr,
                        flush=True,
                    )
    return rows


def table(rows: list[Row], baseline: str = "direct") -> str:
    out = [
        "| stream | conc | target | RPS (min-max) | p50 ms | p99 ms | added p50 ms "
        "| CPU ms/req | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(r.stream, r.concurrency): r for r in rows if r.target == baseline}
    for r in rows:
        b = base.get((r.stream, r.concurrency))
        added = "" if r.target == baseline or b is None else f"{r.p50_ms - b.p50_ms:+.2f}"
        cpu = "" if r.cpu_ms_per_request is None else f"{r.cpu_ms_per_request:.3f}"
        out.append(
            f"| {'SSE' if r.stream else 'JSON'} | {r.concurrency} | {r.target} "
            f"| {r.rps} ({r.rps_min}-{r.rps_max}) | {r.p50_ms} | {r.p99_ms} | {added} "
            f"| {cpu} | {r.errors} |"
        )
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        run_upstream(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 20)
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "hop":
        run_hop(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=CLIENTS)
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    print(versions(), file=sys.stderr)
    rows = compare(args)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
