"""Soak: `lynkr serve` under a steady mixed load, watching its memory and file descriptors.

    .venv/bin/python benchmarks/soak.py                  # 10 minutes at c = 10 (the soak target)
    .venv/bin/python benchmarks/soak.py --minutes 1      # a shorter look
    .venv/bin/python benchmarks/soak.py --json soak.json

Starts the fake upstream and `lynkr serve` exactly as `run.py` does (the default `lynkr.yaml`
routes; access log and session recording on), then runs `--concurrency` closed-loop workers
for `--minutes`. Each worker cycles through a mix of what Claude Code and OpenAI clients send:
the 78 KB Claude Code body as JSON and as a stream, a tiny body, and the same Claude Code body
translated to OpenAI (JSON and stream). Every request carries a fresh nonce, so the cache
misses, the session store writes a turn per request, and the cache's bounded memory fills.

Every `--every` seconds it samples lynkr's RSS (process tree), open file descriptors and
threads. The first `--warmup` seconds are excluded (the cache and connection pools fill);
the verdict compares the median of the first three samples after the warm-up with the median
of the last three: RSS within ±10 %; and the most descriptors open in the first third with the
most in the last third: no growth beyond a slack of 2 (pooled connections come and go).
All processes run on 127.0.0.1 and are stopped by their own pids when the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from payloads import (  # noqa: E402
    CLAUDE_CODE_HEADERS,
    TINY_HEADERS,
    Payload,
    claude_code_request,
    tiny_request,
)
from run import (  # noqa: E402
    Bench,
    Target,
    loop_policy,
    machine,
    one_request,
    rss_mb,
    set_knobs,
)

RSS_TOLERANCE = 0.10
FD_SLACK = 2
KNOBS = {"events": 20, "first_ms": 0, "gap_ms": 0, "body_bytes": 1000}


@dataclass
class Point:
    """One sample of lynkr's process, `at` seconds into the load."""

    at: float
    rss_mb: float
    fds: int
    threads: int
    requests: int
    errors: int


def mix(lynkr: str) -> list[tuple[Target, bool]]:
    """The requests each worker cycles through: (target, streaming)."""
    cc, tiny = claude_code_request(), tiny_request()
    openai = {**CLAUDE_CODE_HEADERS, "x-lynkr-pool": "openai"}
    url = lynkr + "/v1/messages"

    def target(name: str, body: dict[str, Any], stream: bool, headers: dict[str, str]) -> Target:
        payload = Payload.build(name, body, stream=stream, headers=headers)
        return Target("lynkr", url, payload, headers, b"message_stop")

    return [
        (target("json-cc", cc, False, CLAUDE_CODE_HEADERS), False),
        (target("sse-cc", cc, True, CLAUDE_CODE_HEADERS), True),
        (target("json-tiny", tiny, False, TINY_HEADERS), False),
        (target("sse-openai", cc, True, openai), True),
        (target("json-openai", cc, False, openai), False),
    ]


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


async def soak(pid: int, lynkr: str, args: argparse.Namespace) -> tuple[list[Point], list[str]]:
    """Run the load for `args.minutes`, sampling every `args.every` seconds."""
    plan = mix(lynkr)
    counter = itertools.count()
    done = errors = 0
    failures: list[str] = []
    stop_at = time.monotonic() + args.minutes * 60
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker(offset: int) -> None:
            nonlocal done, errors
            for target, stream in itertools.islice(itertools.cycle(plan), offset, None):
                if time.monotonic() >= stop_at:
                    return
                sample = await one_request(session, target, next(counter), stream, False)
                done += 1
                if not sample.ok:
                    errors += 1
                    if len(failures) < 5:
                        failures.append(f"{target.payload.name}: {sample.error}")

        async def sampler() -> list[Point]:
            points: list[Point] = []
            started = time.monotonic()
            while time.monotonic() < stop_at:
                await asyncio.sleep(args.every)
                at = round(time.monotonic() - started, 1)
                rss = round(rss_mb(pid), 1)
                points.append(Point(at, rss, fds(pid), threads(pid), done, errors))
                if not args.quiet:
                    p = points[-1]
                    print(
                        f"  {p.at:6.0f} s  rss {p.rss_mb:6.1f} MB  fds {p.fds:4d}  "
                        f"threads {p.threads:3d}  requests {p.requests:7d}  errors {p.errors}",
                        file=sys.stderr,
                    )
            return points

        workers = [worker(i % len(plan)) for i in range(args.concurrency)]
        points, *_ = await asyncio.gather(sampler(), *workers)
    return points, failures


def verdict(points: list[Point], warmup: float) -> dict[str, Any]:
    """RSS and fds after the warm-up against the end of the run."""
    settled = [p for p in points if p.at >= warmup]
    if len(settled) < 6:
        return {"verdict": "too short: need 6 samples after the warm-up"}
    start, end = settled[:3], settled[-3:]
    rss_start = statistics.median(p.rss_mb for p in start)
    rss_end = statistics.median(p.rss_mb for p in end)
    # Connections to the upstreams and clients come and go with the load: compare the
    # most descriptors open in the first and the last third, with a slack of FD_SLACK.
    third = max(1, len(settled) // 3)
    fd_start = max(p.fds for p in settled[:third])
    fd_end = max(p.fds for p in settled[-third:])
    change = (rss_end - rss_start) / rss_start
    flat = abs(change) <= RSS_TOLERANCE
    return {
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_max_mb": max(p.rss_mb for p in points),
        "rss_change": round(change, 3),
        "fds_start": fd_start,
        "fds_end": fd_end,
        "threads_end": end[-1].threads,
        "rss_flat": flat,
        "fds_flat": fd_end <= fd_start + FD_SLACK,
        "verdict": "met" if flat and fd_end <= fd_start + FD_SLACK else "missed",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds not judged")
    parser.add_argument("--json", help="also write the samples and the verdict here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.minutes * 60 < args.warmup + 6 * args.every:
        args.warmup = max(0.0, args.minutes * 60 - 6 * args.every)
    bench_args = argparse.Namespace(access_log=True, sessions=True, peers=False)
    with tempfile.TemporaryDirectory(prefix="lynkr-soak-") as tmp:
        bench = Bench(Path(tmp), bench_args)
        try:
            bench.start()
            set_knobs(bench.upstream, KNOBS)
            loop_policy()
            pid = bench.procs["lynkr"].pid
            idle = round(rss_mb(pid), 1)
            points, failures = asyncio.run(soak(pid, bench.lynkr, args))
        finally:
            bench.stop()
    result = {
        "machine": machine(),
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "idle_rss_mb": idle,
        "requests": points[-1].requests if points else 0,
        "errors": points[-1].errors if points else 0,
        "failures": failures,
        # Turns the session store skipped because its write backlog was full (best effort).
        "sessions_skipped": bench.facts.get("sessions_skipped", 0),
        **verdict(points, args.warmup),
    }
    print(f"# lynkr soak — {result['machine']}, {args.minutes:g} min at c={args.concurrency}")
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(
            json.dumps({**result, "samples": [p.__dict__ for p in points]}, indent=2)
        )
    return 0 if result.get("verdict") == "met" and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
