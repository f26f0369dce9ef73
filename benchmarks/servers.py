"""Which ASGI server should run behind `lynkr serve`? uvicorn vs granian, side by side.

    .venv/bin/python benchmarks/servers.py [--seconds 3] [--rounds 3] [--json servers.json]

Starts the fake Anthropic upstream of benchmarks/clients.py and, with the same
config, `lynkr serve --server uvicorn` (uvloop + httptools) and
`lynkr serve --server granian` (ASGI interface with lifespan, 1 worker, its
default loop). Then:

1. start-up: each server started and stopped `--starts` times, alternating;
   seconds from process start to `GET /ready` → 200 (which needs the ASGI
   lifespan startup to have run), and idle memory (Pss of the process tree,
   so granian's supervisor and worker are both counted) after the first request;
2. load: direct, uvicorn and granian rounds interleaved (>= 3 rounds, order
   alternating), concurrency 1, 10, 50, non-streaming and SSE; per row RPS,
   p50/p99, errors and lynkr's CPU ms per request (process tree, from /proc);
3. streaming is not buffered: the upstream paces 25 events 20 ms apart; per
   server the client records time to first event, the gaps between arrivals
   and the most events that arrived in one read (1 = no batching).

Needs granian (`pip install -e '.[granian]'`). Loopback only; every process it
starts is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
from clients import (
    HEADERS,
    Round,
    Row,
    free_port,
    load,
    payload,
    rss_mib,
    started,
    summarise,
    table,
)

SERVERS = ("uvicorn", "granian")


def write_config(directory: Path, upstream_port: int) -> Path:
    config = directory / "lynkr.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        version: 1
        server: {{data_dir: {directory}/data, access_log: false, log_level: warning}}
        providers:
          up: {{type: anthropic, base_url: "http://127.0.0.1:{upstream_port}", api_key: k,
                model: up}}
        pools: {{main: {{providers: [up]}}}}
        routes:
          - path: /v1/messages
            middleware: [{{use: validation}}, {{use: routing}}]
            app: agent
        """)
    )
    return config


def serve_command(config: Path, port: int, server: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lynkr",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--server",
        server,
    ]


def startup(configs: dict[str, Path], starts: int) -> dict[str, dict[str, float]]:
    """Median seconds to ready and idle memory over `starts` fresh starts per server."""
    ready: dict[str, list[float]] = {s: [] for s in SERVERS}
    rss: dict[str, list[float]] = {s: [] for s in SERVERS}
    for index in range(starts):
        for server in SERVERS if index % 2 == 0 else tuple(reversed(SERVERS)):
            port = free_port()
            command = serve_command(configs[server], port, server)
            with started(command, f"http://127.0.0.1:{port}/ready") as (proc, seconds):
                ready[server].append(seconds)
                load(f"http://127.0.0.1:{port}/v1/messages", payload(False), 1, 0.2, None)
                time.sleep(1.0)
                rss[server].append(rss_mib(proc.pid))
    return {
        s: {
            "ready_s": round(statistics.median(ready[s]), 3),
            "ready_s_max": round(max(ready[s]), 3),
            "idle_pss_mib": round(statistics.median(rss[s]), 1),
        }
        for s in SERVERS
    }


async def _paced(url: str, body: bytes, concurrency: int, streams: int) -> dict[str, float]:
    first: list[float] = []
    gaps: list[float] = []
    most_per_read = 0
    events = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            nonlocal most_per_read, events
            for _ in range(streams):
                begun = time.perf_counter()
                async with s.post(url, data=body, headers=HEADERS) as response:
                    last = None
                    async for chunk in response.content.iter_any():
                        now = time.perf_counter()
                        count = chunk.count(b"\n\n")
                        events += count
                        most_per_read = max(most_per_read, count)
                        if last is None:
                            first.append(now - begun)
                        else:
                            gaps.append(now - last)
                        last = now

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    gaps.sort()
    return {
        "first_event_p50_ms": round(statistics.median(first) * 1000, 2),
        "gap_p50_ms": round(statistics.median(gaps) * 1000, 2),
        "gap_min_ms": round(gaps[0] * 1000, 2),
        "gap_p99_ms": round(gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] * 1000, 2),
        "most_events_per_read": most_per_read,
        "events_per_stream": events / (concurrency * streams),
    }


def paced(targets: dict[str, tuple[str, int | None]]) -> list[dict[str, Any]]:
    import uvloop

    body = payload(True, pace_ms=20)
    out = []
    for concurrency, streams in ((1, 4), (10, 2)):
        for target, (url, _) in targets.items():
            result = uvloop.run(_paced(f"{url}/v1/messages", body, concurrency, streams))
            out.append({"target": target, "concurrency": concurrency, **result})
            print(f"  paced {target:8} c={concurrency:<3} {result}", file=sys.stderr, flush=True)
    return out


def compare(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    clients = str(Path(__file__).resolve().with_name("clients.py"))
    configs = {}
    for server in SERVERS:
        (tmp / server).mkdir()
        configs[server] = write_config(tmp / server, up_port)
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            started([sys.executable, clients, "upstream", str(up_port)], port=up_port)
        )
        start = startup(configs, args.starts)
        print(f"  start-up {start}", file=sys.stderr, flush=True)
        targets: dict[str, tuple[str, int | None]] = {"direct": (upstream, None)}
        for server in SERVERS:
            port = free_port()
            proc, _ = stack.enter_context(
                started(
                    serve_command(configs[server], port, server), f"http://127.0.0.1:{port}/ready"
                )
            )
            targets[server] = (f"http://127.0.0.1:{port}", proc.pid)
        pacing = paced(targets)
        rows: list[Row] = []
        for stream in (False, True):
            body = payload(stream, tiny=args.tiny)
            for concurrency in args.concurrency:
                for url, _ in targets.values():
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
                        f"  {target:8} stream={stream!s:5} c={concurrency:<3} rps={row.rps:<6}"
                        f" p50={row.p50_ms:<7} p99={row.p99_ms:<8} cpu={row.cpu_ms_per_request}"
                        f" err={row.errors}",
                        file=sys.stderr,
                        flush=True,
                    )
    return {"startup": start, "paced": pacing, "rows": rows}


def report(result: dict[str, Any]) -> str:
    out = [
        table(result["rows"]),
        "",
        "| server | ready s (median; max) | idle Pss MiB |",
        "|---|---|---|",
    ]
    for server, s in result["startup"].items():
        out.append(f"| {server} | {s['ready_s']} ({s['ready_s_max']}) | {s['idle_pss_mib']} |")
    out += [
        "",
        "| target | conc | first event p50 ms | gap p50 ms | gap min-p99 ms "
        "| most events in one read | events/stream |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in result["paced"]:
        out.append(
            f"| {p['target']} | {p['concurrency']} | {p['first_event_p50_ms']} "
            f"| {p['gap_p50_ms']} | {p['gap_min_ms']}-{p['gap_p99_ms']} "
            f"| {p['most_events_per_read']} | {p['events_per_stream']:g} |"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=3, help="fresh starts per server")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="load with a ~100-byte body (the server's share stands out more)",
    )
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = compare(args, Path(tmp))
    print(report(result))
    if args.json:
        result["rows"] = [asdict(r) for r in result["rows"]]
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
