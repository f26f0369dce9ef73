"""Side-by-side timing of one proxy hop: direct to a fake upstream vs through `lynkr serve`.

    .venv/bin/python benchmarks/hop.py [--requests 300] [--rounds 3] [--json out.json]

Starts a fake Anthropic upstream (uvicorn + httptools, its own process) and
`lynkr serve` pointed at it, then interleaves rounds of direct and proxied
requests — a Claude Code-shaped body, streaming and not — at concurrency 1 and
10, so both see the same machine state. Reports per row requests per second,
p50/p99 latency, the p50 added by lynkr, and lynkr's CPU milliseconds per
request (read from /proc, the steadiest number on a noisy 2-core box).
Loopback only; every process it starts is stopped by its pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "reference" / "claude-code-request-sample.json"

UPSTREAM = textwrap.dedent(
    '''
    import json, sys
    import uvicorn

    EVENTS = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "model": "up", "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        *[("content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "word "}}) for _ in range(20)],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
            "stop_sequence": None}, "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    SSE = b"".join(f"event: {n}\\ndata: {json.dumps(d)}\\n\\n".encode() for n, d in EVENTS)
    MESSAGE = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "up",
        "content": [{"type": "text", "text": "word " * 20}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 20}}).encode()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        stream = b'"stream":true' in body or b'"stream": true' in body
        kind = b"text/event-stream" if stream else b"application/json"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": SSE if stream else MESSAGE})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                http="httptools", loop="uvloop", lifespan="off")
    '''
)


@dataclass
class Row:
    mode: str
    stream: bool
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    lynkr_cpu_ms_per_request: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def process(command: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                host, port = url.rsplit(":", 1)
                socket.create_connection((host.split("//")[1], int(port)), 0.2).close()
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{command[:4]} did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def body(stream: bool) -> bytes:
    sample = json.loads(SAMPLE.read_text())["body"] if SAMPLE.exists() else {}
    sample = dict(sample) or {"model": "claude-x", "max_tokens": 100,
                              "messages": [{"role": "user", "content": "hi"}]}
    sample.pop("stream", None)
    if stream:
        sample["stream"] = True
    return json.dumps(sample).encode()


async def run_round(url: str, payload: bytes, requests: int, concurrency: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(requests))
    headers = {"content-type": "application/json", "x-api-key": "bench",
               "anthropic-version": "2023-06-01"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for _ in queue:
                started = time.perf_counter()
                async with session.post(f"{url}/v1/messages", data=payload, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    up_port, lynkr_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "upstream.py"
        script.write_text(UPSTREAM)
        config = Path(tmp) / "lynkr.yaml"
        config.write_text(textwrap.dedent(f"""\
            version: 1
            server: {{data_dir: {tmp}/data, access_log: false, log_level: warning}}
            providers:
              up: {{type: anthropic, base_url: "http://127.0.0.1:{up_port}", api_key: k, model: up}}
            pools: {{main: {{providers: [up]}}}}
            routes:
              - path: /v1/messages
                middleware: [{{use: validation}}, {{use: routing}}]
                app: agent
            """))
        upstream_url = f"http://127.0.0.1:{up_port}"
        lynkr_url = f"http://127.0.0.1:{lynkr_port}"
        serve = [sys.executable, "-m", "lynkr", "serve", "--config", str(config),
                 "--port", str(lynkr_port)]
        with process([sys.executable, str(script), str(up_port)], upstream_url), \
             process(serve, lynkr_url) as lynkr:
            rows = measure(args, upstream_url, lynkr_url, lynkr.pid)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


def measure(args: argparse.Namespace, direct: str, proxied: str, pid: int) -> list[Row]:
    rows = []
    for stream in (False, True):
        payload = body(stream)
        for concurrency in (1, 10):
            asyncio.run(run_round(proxied, payload, 30, concurrency))  # warm both paths
            samples: dict[str, list[float]] = {"direct": [], "lynkr": []}
            errors = {"direct": 0, "lynkr": 0}
            elapsed = {"direct": 0.0, "lynkr": 0.0}
            cpu = 0.0
            for _ in range(args.rounds):
                for mode, url in (("direct", direct), ("lynkr", proxied)):
                    before = cpu_seconds(pid)
                    lat, err, took = asyncio.run(run_round(url, payload, args.requests, concurrency))
                    if mode == "lynkr":
                        cpu += cpu_seconds(pid) - before
                    samples[mode] += lat
                    errors[mode] += err
                    elapsed[mode] += took
            for mode in ("direct", "lynkr"):
                count = len(samples[mode])
                rows.append(Row(
                    mode, stream, concurrency, round(count / elapsed[mode], 1),
                    round(percentile(samples[mode], 0.5), 2),
                    round(percentile(samples[mode], 0.99), 2), errors[mode],
                    round(cpu * 1000 / count, 3) if mode == "lynkr" else None,
                ))
    return rows


def table(rows: list[Row]) -> str:
    out = ["| stream | conc | mode | RPS | p50 ms | p99 ms | added p50 ms | lynkr CPU ms/req | errors |",
           "|---|---|---|---|---|---|---|---|---|"]
    direct = {(r.stream, r.concurrency): r for r in rows if r.mode == "direct"}
    for r in rows:
        added = r.p50_ms - direct[(r.stream, r.concurrency)].p50_ms if r.mode == "lynkr" else None
        out.append(
            f"| {'yes' if r.stream else 'no'} | {r.concurrency} | {r.mode} | {r.rps} | {r.p50_ms} "
            f"| {r.p99_ms} | {'' if added is None else f'{added:+.2f}'} "
            f"| {'' if r.lynkr_cpu_ms_per_request is None else r.lynkr_cpu_ms_per_request} "
            f"| {r.errors} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
