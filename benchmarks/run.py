"""Side-by-side benchmark: direct to a fake upstream, a bare aiohttp hop, and `lynkr serve`.

    .venv/bin/python benchmarks/run.py            # full matrix, c = 1, 10, 50 (≤ 10 min)
    .venv/bin/python benchmarks/run.py --quick    # c = 1, 10, fewer requests (< 60 s)
    .venv/bin/python benchmarks/run.py --peers    # also LiteLLM proxy (installed on first use)
    .venv/bin/python benchmarks/run.py --json out.json   # the rows and targets as JSON too

What it starts (all on 127.0.0.1, free ports; every process stopped by its pid at the end):

* `fake_upstream.py` — Anthropic and OpenAI, JSON and SSE, with knobs for events, first-event
  delay, inter-event gap and body size (its own process: uvicorn + httptools + uvloop);
* `bare_hop.py` — the cheapest Python hop (raw ASGI + one aiohttp session), the yardstick
  for throughput;
* `lynkr serve` with the default stack of `lynkr.yaml` (its `routes:` copied verbatim:
  shedding, validation, cache, policy `policies/default.yaml`, routing, failover), in front
  of an `anthropic` provider (pass-through) and an `openai` provider (translation, chosen with
  `x-lynkr-pool: openai`);
* with ``--peers``, LiteLLM proxy from PyPI in `benchmarks/.peers/litellm` (see `peers.py`).

The load generator is this process: aiohttp on uvloop, closed loop, C workers. For every
scenario and concurrency it runs ≥ 3 rounds, and in each round every target once, in
rotating order (direct, hop, lynkr[, litellm]), so all see the same machine state. Every
request carries a fresh nonce in its last user message, so lynkr's cache always misses.

Per row: requests per second, p50/p99 latency, errors, added p50/p99 vs direct, the
target's CPU milliseconds per request (utime + stime from /proc/<pid>/stat, children
included, over the round), its RSS; for streams, time to first event (TTFE) and added TTFE;
for paced streams (upstream gap 20 ms), how many events reached the client only after the
upstream had sent the next one ("batched": 0 means every event was relayed on its own).
The translation cost per event is the CPU difference between 200-event and 2-event OpenAI
streams, divided by 198. A last section checks the performance targets (README.md,
"Performance").

`wrk` is used for nothing: it is not installed here, and the asyncio client is needed anyway
for per-event timestamps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from payloads import (  # noqa: E402
    CLAUDE_CODE_HEADERS,
    TINY_HEADERS,
    Payload,
    claude_code_request,
    tiny_request,
)

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROUND_TIMEOUT = 120.0


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One kind of request, run at each of `concurrency` against every target."""

    name: str
    api: str  # "anthropic" (lynkr passes through) | "openai" (lynkr translates)
    stream: bool
    payload: str  # "cc" (realistic Claude Code body) | "tiny"
    knobs: dict[str, float]
    concurrency: tuple[int, ...]
    requests: int  # per round per target at c ≤ 10; doubled at c = 50; paced: 10 per worker
    paced: bool = False
    peer: bool = False  # also run against LiteLLM with --peers
    about: str = ""


def scenarios(quick: bool) -> list[Scenario]:
    c_all = (1, 10) if quick else (1, 10, 50)
    c_low = (1, 10)
    n = 60 if quick else 300
    c_paced = (10,) if quick else c_all
    sse = {"events": 20, "first_ms": 0, "gap_ms": 0, "body_bytes": 100}
    paced = {"events": 10, "first_ms": 0, "gap_ms": 20, "body_bytes": 100}
    json_knobs = {"events": 20, "first_ms": 0, "gap_ms": 0, "body_bytes": 1000}
    return [
        Scenario(
            "json-cc",
            "anthropic",
            False,
            "cc",
            json_knobs,
            c_all,
            n,
            peer=True,
            about="non-streaming, Claude Code body (78 KB, 24 tools), Anthropic pass-through",
        ),
        Scenario(
            "json-tiny",
            "anthropic",
            False,
            "tiny",
            json_knobs,
            c_all,
            n,
            about="non-streaming, tiny body, Anthropic pass-through",
        ),
        Scenario(
            "sse-cc",
            "anthropic",
            True,
            "cc",
            sse,
            c_all,
            n,
            peer=True,
            about="streaming, Claude Code body, 20 events unpaced, Anthropic pass-through",
        ),
        Scenario(
            "sse-paced",
            "anthropic",
            True,
            "cc",
            paced,
            c_paced,
            n // 3,
            paced=True,
            about="streaming, Claude Code body, 10 events 20 ms apart, Anthropic pass-through",
        ),
        Scenario(
            "json-openai",
            "openai",
            False,
            "cc",
            json_knobs,
            c_all,
            n,
            peer=True,
            about="non-streaming, Claude Code body, translated to OpenAI and back",
        ),
        Scenario(
            "sse-openai",
            "openai",
            True,
            "cc",
            sse,
            c_low,
            n,
            peer=True,
            about="streaming, Claude Code body, 20 events unpaced, translated",
        ),
        Scenario(
            "sse-openai-paced",
            "openai",
            True,
            "cc",
            paced,
            (10,),
            n // 3,
            paced=True,
            about="streaming, Claude Code body, 10 events 20 ms apart, translated",
        ),
        Scenario(
            "sse-openai-200ev",
            "openai",
            True,
            "tiny",
            {**sse, "events": 200},
            c_low,
            n // 2,
            about="streaming, tiny body, 200 events unpaced, translated",
        ),
        Scenario(
            "sse-openai-2ev",
            "openai",
            True,
            "tiny",
            {**sse, "events": 2},
            c_low,
            n // 2,
            about="the same with 2 events (subtracted for the per-event cost)",
        ),
    ]


SMOKE = ("json-cc", "sse-cc")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (LiteLLM and uvicorn workers may fork)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += parents.get(current, [])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its live descendants (and their reaped children)."""
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MB."""
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1])
    return total * PAGE_SIZE / 1e6


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    return env


class Process:
    """A server subprocess, ready when `ready_url` answers 200; stopped by its own pid."""

    def __init__(
        self,
        name: str,
        command: list[str],
        ready_url: str,
        log: Path,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name, self.log = name, log
        started = time.perf_counter()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env or _clean_env(),
            )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError), urllib.request.urlopen(ready_url, timeout=1) as r:
                if r.status == 200:
                    self.ready_seconds = time.perf_counter() - started
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def lynkr_config(
    tmp: Path,
    port: int,
    upstream: str,
    access_log: bool,
    sessions: bool = True,
    memory: bool = False,
    name: str = "lynkr",
) -> Path:
    """The benchmark config: `lynkr.yaml`'s routes verbatim, providers on the fake upstream;
    with `memory`, long-term memory on (its defaults: wordllama, extraction, injection)."""
    default = yaml.safe_load((ROOT / "lynkr.yaml").read_text())
    for route in default["routes"]:
        for layer in route["middleware"]:
            if "policy" in layer:
                layer["policy"] = str(ROOT / layer["policy"])
    config = {
        "version": 1,
        "server": {
            **default["server"],
            "host": "127.0.0.1",
            "port": port,
            "data_dir": str(tmp / f"{name}-data"),
            "access_log": access_log,
        },
        "providers": {
            "anthropic": {
                "type": "anthropic",
                "base_url": upstream,
                "api_key": "upstream-key",
                "model": "up-model",
            },
            "openai": {
                "type": "openai",
                "base_url": f"{upstream}/v1",
                "api_key": "upstream-key",
                "model": "up-model",
            },
        },
        "pools": {"main": {"providers": ["anthropic"]}, "openai": {"providers": ["openai"]}},
        "routing": {**default.get("routing", {}), "default_pool": "main"},
        "models": default.get("models", []),
        "routes": default["routes"],
    }
    if not sessions:
        config["sessions"] = {"enabled": False}
    if memory:
        config["memory"] = {"enabled": True}
    path = tmp / f"{name}-bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --------------------------------------------------------------------------- load generator


@dataclass
class Sample:
    latency: float  # seconds, request start to last byte
    ttfe: float | None = None  # seconds to the first body chunk (streams)
    ok: bool = True
    lags: list[float] = field(default_factory=list)  # paced: ms from upstream send to arrival
    batched: int = 0  # paced: events that arrived after the upstream sent the next one
    events: int = 0
    error: str = ""  # what went wrong (status and the start of the answer), when not ok


_STAMP = re.compile(rb"(\d+)@(\d+) ")


@dataclass
class Target:
    """Where one kind of request goes for one target (direct, hop, lynkr, litellm)."""

    mode: str
    url: str
    payload: Payload
    headers: dict[str, str]
    done_marker: bytes  # the stream is complete when its tail holds this


async def one_request(
    session: aiohttp.ClientSession, target: Target, n: int, stream: bool, paced: bool
) -> Sample:
    started = time.perf_counter()
    body = target.payload.body(n)
    try:
        async with session.post(target.url, data=body, headers=target.headers) as response:
            if not stream:
                data = await response.read()
                sample = Sample(time.perf_counter() - started, ok=response.status == 200)
                if not sample.ok:
                    sample.error = f"{response.status}: {data[:300]!r}"
                return sample
            first: float | None = None
            tail = b""
            arrivals: list[tuple[int, int]] = []  # (monotonic ns, bytes received so far)
            parts: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                if first is None:
                    first = time.perf_counter()
                if paced:
                    size += len(chunk)
                    arrivals.append((time.monotonic_ns(), size))
                    parts.append(chunk)
                tail = (tail + chunk)[-256:]
            sample = Sample(
                time.perf_counter() - started,
                None if first is None else first - started,
                ok=response.status == 200 and target.done_marker in tail,
            )
            if not sample.ok:
                sample.error = f"{response.status}, stream ended with {tail[-200:]!r}"
            elif paced:
                _event_timing(sample, b"".join(parts), arrivals)
            return sample
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Sample(time.perf_counter() - started, ok=False, error=repr(exc))


def _event_timing(sample: Sample, data: bytes, arrivals: list[tuple[int, int]]) -> None:
    """Per event: ms from the upstream's send to arrival here; and whether it was batched."""
    stamps = [(m.end(), int(m.group(2))) for m in _STAMP.finditer(data)]
    arrived = []
    index = 0
    for end, _ in stamps:
        while arrivals[index][1] < end:
            index += 1
        arrived.append(arrivals[index][0])
    for i, (_, sent) in enumerate(stamps):
        sample.lags.append((arrived[i] - sent) / 1e6)
        if i + 1 < len(stamps) and arrived[i] >= stamps[i + 1][1]:
            sample.batched += 1
    sample.events = len(stamps)


async def run_round(
    target: Target,
    requests: int,
    concurrency: int,
    stream: bool,
    paced: bool,
    counter: Iterator[int],
) -> tuple[list[Sample], float]:
    """`requests` requests from `concurrency` workers; returns the samples and elapsed seconds."""
    samples: list[Sample] = []
    left = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:

        async def worker() -> None:
            for _ in left:
                samples.append(await one_request(session, target, next(counter), stream, paced))

        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(worker() for _ in range(concurrency))), ROUND_TIMEOUT
            )
        except TimeoutError:
            samples += [Sample(ROUND_TIMEOUT, ok=False) for _ in left]
        elapsed = time.perf_counter() - started
    return samples, elapsed


# --------------------------------------------------------------------------- rows


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Row:
    scenario: str
    concurrency: int
    mode: str
    requests: int
    rps: float
    p50_ms: float | None  # None when every request failed
    p99_ms: float | None
    errors: int
    cpu_ms_per_request: float | None
    rss_mb: float | None
    round_p50_ms: list[float]
    ttfe_p50_ms: float | None = None
    ttfe_p99_ms: float | None = None
    events: int | None = None
    batched_events: int | None = None
    event_lag_p50_ms: float | None = None
    event_lag_p99_ms: float | None = None
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    added_ttfe_p50_ms: float | None = None
    rps_vs_hop: float | None = None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def make_row(
    scenario: Scenario,
    concurrency: int,
    mode: str,
    rounds: list[list[Sample]],
    elapsed: float,
    cpu: float | None,
    rss: float | None,
) -> Row:
    samples = [s for r in rounds for s in r]
    good = [s for s in samples if s.ok]
    latencies = [s.latency for s in good]
    ttfes = [s.ttfe for s in good if s.ttfe is not None]
    lags = [lag for s in good for lag in s.lags]
    return Row(
        scenario.name,
        concurrency,
        mode,
        len(samples),
        round(len(samples) / elapsed, 1) if elapsed else 0.0,
        _ms(pct(latencies, 0.5)),
        _ms(pct(latencies, 0.99)),
        len(samples) - len(good),
        None if cpu is None else round(cpu * 1000 / max(1, len(samples)), 3),
        None if rss is None else round(rss, 1),
        [_ms(pct([s.latency for s in r if s.ok], 0.5)) or 0.0 for r in rounds],
        _ms(pct(ttfes, 0.5)) if scenario.stream else None,
        _ms(pct(ttfes, 0.99)) if scenario.stream else None,
        sum(s.events for s in good) if scenario.paced else None,
        sum(s.batched for s in good) if scenario.paced else None,
        round(pct(lags, 0.5) or 0, 3) if scenario.paced else None,
        round(pct(lags, 0.99) or 0, 3) if scenario.paced else None,
    )


def derive(rows: list[Row]) -> None:
    """Fill the added-vs-direct columns and the throughput share of the bare hop."""
    by_key = {(r.scenario, r.concurrency, r.mode): r for r in rows}
    for row in rows:
        direct = by_key.get((row.scenario, row.concurrency, "direct"))
        hop = by_key.get((row.scenario, row.concurrency, "hop"))
        if row.mode == "direct" or direct is None or row.p50_ms is None:
            continue
        if direct.p50_ms is not None and direct.p99_ms is not None and row.p99_ms is not None:
            row.added_p50_ms = round(row.p50_ms - direct.p50_ms, 3)
            row.added_p99_ms = round(row.p99_ms - direct.p99_ms, 3)
        if row.ttfe_p50_ms is not None and direct.ttfe_p50_ms is not None:
            row.added_ttfe_p50_ms = round(row.ttfe_p50_ms - direct.ttfe_p50_ms, 3)
        if hop is not None and hop.rps:
            row.rps_vs_hop = round(row.rps / hop.rps, 3)


# --------------------------------------------------------------------------- the run


class Bench:
    """The processes of one run and the targets each scenario sends to."""

    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp, self.args = tmp, args
        self.procs: dict[str, Process] = {}
        self.facts: dict[str, Any] = {}

    def start(self) -> None:
        up_port, hop_port, lynkr_port = free_port(), free_port(), free_port()
        self.upstream = f"http://127.0.0.1:{up_port}"
        self.hop = f"http://127.0.0.1:{hop_port}"
        self.lynkr = f"http://127.0.0.1:{lynkr_port}"
        py = sys.executable
        self._add(
            Process(
                "upstream",
                [py, str(HERE / "fake_upstream.py"), str(up_port)],
                f"{self.upstream}/_bench",
                self.tmp / "upstream.log",
            )
        )
        self._add(
            Process(
                "hop",
                [py, str(HERE / "bare_hop.py"), str(hop_port), self.upstream],
                f"{self.hop}/_bench",
                self.tmp / "hop.log",
            )
        )
        config = lynkr_config(
            self.tmp, lynkr_port, self.upstream, self.args.access_log, self.args.sessions
        )
        walls = []
        for _ in range(3):  # the best of three: the first may compile bytecode
            started = time.perf_counter()
            check = subprocess.run(
                [py, "-m", "lynkr", "validate", str(config)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env=_clean_env(),
            )
            walls.append(round((time.perf_counter() - started) * 1000, 1))
            if check.returncode != 0:
                raise RuntimeError(f"benchmark config is invalid:\n{check.stdout}{check.stderr}")
        self.facts["validate_ms"] = min(walls)
        self.facts["validate_first_ms"] = walls[0]
        self._add(
            Process(
                "lynkr",
                [py, "-m", "lynkr", "serve", "--config", str(config)],
                f"{self.lynkr}/health",
                self.tmp / "lynkr.log",
            )
        )
        self.facts["lynkr_ready_ms"] = round(self.procs["lynkr"].ready_seconds * 1000, 1)
        time.sleep(0.5)
        self.facts["lynkr_idle_rss_mb"] = round(rss_mb(self.procs["lynkr"].pid), 1)
        if self.args.memory:
            self._start_memory_lynkr(py)
        if self.args.peers:
            import peers

            started_peer = peers.start_litellm(self.tmp, self.upstream, _clean_env())
            if isinstance(started_peer, str):
                print(f"peers: LiteLLM skipped — {started_peer}", file=sys.stderr)
                self.facts["litellm_skipped"] = started_peer
            else:
                self._add(started_peer.process)
                self.litellm = started_peer.url
                self.litellm_headers = started_peer.headers
                self.facts["litellm_version"] = started_peer.version
                time.sleep(0.5)
                self.facts["litellm_idle_rss_mb"] = round(rss_mb(started_peer.process.pid), 1)

    def _start_memory_lynkr(self, py: str) -> None:
        """The same lynkr with long-term memory on, beside the plain one (`--memory`)."""
        port = free_port()
        self.lynkr_memory = f"http://127.0.0.1:{port}"
        config = lynkr_config(self.tmp, port, self.upstream, self.args.access_log,
                              self.args.sessions, memory=True, name="lynkr-memory")  # fmt: skip
        self._add(
            Process(
                "lynkr-memory",
                [py, "-m", "lynkr", "serve", "--config", str(config)],
                f"{self.lynkr_memory}/health",
                self.tmp / "lynkr-memory.log",
            )
        )
        self.facts["lynkr_memory_ready_ms"] = round(
            self.procs["lynkr-memory"].ready_seconds * 1000, 1
        )
        time.sleep(0.5)
        self.facts["lynkr_memory_idle_rss_mb"] = round(rss_mb(self.procs["lynkr-memory"].pid), 1)

    def _add(self, process: Process) -> None:
        self.procs[process.name] = process

    def stop(self) -> None:
        for process in reversed(list(self.procs.values())):
            process.stop()
        if "lynkr" in self.procs:
            self.facts["sessions_skipped"] = sessions_skipped(self.procs["lynkr"].log)

    def targets(self, scenario: Scenario) -> list[Target]:
        request = claude_code_request() if scenario.payload == "cc" else tiny_request()
        headers = CLAUDE_CODE_HEADERS if scenario.payload == "cc" else TINY_HEADERS
        openai = scenario.api == "openai"
        raw_path = "/v1/chat/completions" if openai else "/v1/messages"
        raw_done = b"[DONE]" if openai else b"message_stop"

        def payload(model: str | None = None) -> Payload:
            return Payload.build(
                scenario.name, request, stream=scenario.stream, headers=headers, model=model
            )

        base = payload()
        lynkr_headers = {**headers, "x-lynkr-pool": "openai"} if openai else headers
        out = [
            Target("direct", self.upstream + raw_path, base, headers, raw_done),
            Target("hop", self.hop + raw_path, base, headers, raw_done),
            Target("lynkr", self.lynkr + "/v1/messages", base, lynkr_headers, b"message_stop"),
        ]
        if self.args.memory:
            out.append(Target("lynkr-memory", self.lynkr_memory + "/v1/messages", base,
                              lynkr_headers, b"message_stop"))  # fmt: skip
        wanted = set(self.args.modes.split(",")) | ({"lynkr-memory"} if self.args.memory else set())
        out = [t for t in out if t.mode in wanted]
        if scenario.peer and hasattr(self, "litellm") and "litellm" in wanted:
            model = "bench-openai" if openai else "bench-anthropic"
            out.append(
                Target(
                    "litellm",
                    self.litellm + "/v1/messages",
                    payload(model),
                    {**headers, **self.litellm_headers},
                    b"message_stop",
                )
            )
        return out

    def pid_of(self, mode: str) -> int | None:
        name = {"direct": "upstream"}.get(mode, mode)
        return self.procs[name].pid if name in self.procs else None


def sessions_skipped(log: Path) -> int:
    """Turns lynkr did not record because its session-write backlog was full (from its log).

    Skipping is lynkr's overload behaviour (recording is best effort); a run that skipped
    turns spent less CPU on sessions than one that recorded them all, so it is reported.
    """
    found = [
        int(match[1])
        for line in log.read_text(errors="replace").splitlines()
        if "sessions_backlog_full" in line and (match := _SKIPPED.search(line))
    ]
    return max(found, default=0)


_SKIPPED = re.compile(r"\bskipped\W+(\d+)")


def set_knobs(upstream: str, knobs: dict[str, float]) -> None:
    request = urllib.request.Request(
        f"{upstream}/_bench", data=json.dumps(knobs).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


async def measure(
    bench: Bench, plan: list[Scenario], rounds: int, scale: float, log: bool = True
) -> list[Row]:
    rows: list[Row] = []
    counter = iter(range(10**12))
    for scenario in plan:
        set_knobs(bench.upstream, scenario.knobs)
        targets = bench.targets(scenario)
        for concurrency in scenario.concurrency:
            requests = max(20, int(scenario.requests * scale * (2 if concurrency >= 50 else 1)))
            if scenario.paced:  # ~0.2 s per stream: a fixed count per worker keeps rounds short
                per_worker = 5 if bench.args.quick else 10
                requests = max(20, int(per_worker * concurrency * scale))
            requests = max(requests, 2 * concurrency)
            for target in targets:  # warm up each path (connections, caches, lazy imports)
                await run_round(
                    target, max(10, concurrency), concurrency, scenario.stream, False, counter
                )
            collected: dict[str, list[list[Sample]]] = {t.mode: [] for t in targets}
            elapsed = dict.fromkeys(collected, 0.0)
            cpu = dict.fromkeys(collected, 0.0)
            rss = dict.fromkeys(collected, 0.0)
            for round_no in range(rounds):
                shift = round_no % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    pid = bench.pid_of(target.mode)
                    before = cpu_seconds(pid) if pid else 0.0
                    samples, took = await run_round(
                        target, requests, concurrency, scenario.stream, scenario.paced, counter
                    )
                    if pid:
                        cpu[target.mode] += cpu_seconds(pid) - before
                        rss[target.mode] = max(rss[target.mode], rss_mb(pid))
                    collected[target.mode].append(samples)
                    failed = next((x.error for x in samples if not x.ok), None)
                    if failed and log:
                        print(
                            f"  {scenario.name} c={concurrency} {target.mode}: first error: "
                            f"{failed}",
                            file=sys.stderr,
                        )
                    elapsed[target.mode] += took
            for target in targets:
                mode = target.mode
                rows.append(
                    make_row(
                        scenario,
                        concurrency,
                        mode,
                        collected[mode],
                        elapsed[mode],
                        cpu[mode],
                        rss[mode],
                    )
                )
            if log:
                done = [
                    r for r in rows if r.scenario == scenario.name and r.concurrency == concurrency
                ]
                print(
                    f"  {scenario.name} c={concurrency}: "
                    + ", ".join(
                        f"{r.mode} {r.rps:.0f} rps p50 {_cell(r.p50_ms)} ms"
                        f"{'' if r.errors == 0 else f' ERR {r.errors}'}"
                        for r in done
                    ),
                    file=sys.stderr,
                    flush=True,
                )
    derive(rows)
    return rows


# --------------------------------------------------------------------------- report


def per_event_cpu(rows: list[Row], mode: str = "lynkr") -> dict[int, dict[str, float]]:
    """Translation CPU per event: (CPU/request at 200 events − at 2 events) / 198, per c."""
    out = {}
    by = {(r.scenario, r.concurrency, r.mode): r for r in rows}
    for (name, c, m), row in by.items():
        if name != "sse-openai-200ev" or m != mode:
            continue
        small = by.get(("sse-openai-2ev", c, mode))
        if small and row.cpu_ms_per_request is not None and small.cpu_ms_per_request is not None:
            marginal = (row.cpu_ms_per_request - small.cpu_ms_per_request) / 198 * 1000
            out[c] = {
                "marginal_us_per_event": round(marginal, 2),
                "whole_stream_us_per_event": round(row.cpu_ms_per_request / 200 * 1000, 2),
            }
    return out


def _cell(value: Any, fmt: str = "{:.2f}", signed: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float | int) and signed:
        return f"{value:+.2f}"
    return fmt.format(value) if isinstance(value, float | int) else str(value)


def markdown(rows: list[Row], plan: list[Scenario]) -> str:
    out = []
    for scenario in plan:
        mine = [r for r in rows if r.scenario == scenario.name]
        if not mine:
            continue
        out.append(f"\n**{scenario.name}** — {scenario.about}\n")
        head = [
            "c",
            "target",
            "RPS",
            "p50 ms",
            "p99 ms",
            "err",
            "added p50",
            "added p99",
            "CPU ms/req",
            "RSS MB",
            "RPS/hop",
        ]
        if scenario.stream:
            head += ["TTFE p50", "added TTFE"]
        if scenario.paced:
            head += ["events", "batched", "lag p50/p99 ms"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for r in mine:
            cells = [
                str(r.concurrency),
                r.mode,
                f"{r.rps:.0f}",
                _cell(r.p50_ms),
                _cell(r.p99_ms),
                str(r.errors),
                _cell(r.added_p50_ms, signed=True),
                _cell(r.added_p99_ms, signed=True),
                _cell(r.cpu_ms_per_request, "{:.3f}"),
                _cell(r.rss_mb, "{:.0f}"),
                _cell(r.rps_vs_hop, "{:.0%}"),
            ]
            if scenario.stream:
                cells += [_cell(r.ttfe_p50_ms), _cell(r.added_ttfe_p50_ms, signed=True)]
            if scenario.paced:
                cells += [
                    str(r.events),
                    str(r.batched_events),
                    f"{r.event_lag_p50_ms:.2f} / {r.event_lag_p99_ms:.2f}",
                ]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def check_targets(rows: list[Row], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The performance targets, each with the measured value and met / missed."""
    by = {(r.scenario, r.concurrency, r.mode): r for r in rows}
    checks: list[dict[str, Any]] = []

    def add(
        name: str,
        value: float | None,
        limit: float,
        unit: str,
        higher: bool = False,
        note: str = "",
    ) -> None:
        if value is None:
            checks.append(
                {
                    "target": name,
                    "value": None,
                    "limit": limit,
                    "met": None,
                    "note": note or "not measured in this run",
                }
            )
            return
        met = value >= limit if higher else value <= limit
        checks.append(
            {
                "target": name,
                "value": round(value, 3),
                "limit": limit,
                "unit": unit,
                "met": met,
                "note": note,
            }
        )

    cc = by.get(("json-cc", 10, "lynkr"))
    add("json-cc c=10 added p50", cc and cc.added_p50_ms, 1.5, "ms")
    add("json-cc c=10 added p99", cc and cc.added_p99_ms, 8.0, "ms")
    add("json-cc c=10 lynkr CPU/request", cc and cc.cpu_ms_per_request, 0.6, "ms")
    sse = by.get(("sse-cc", 10, "lynkr"))
    add("sse pass-through c=10 added TTFE p50", sse and sse.added_ttfe_p50_ms, 2.0, "ms")
    paced = by.get(("sse-paced", 10, "lynkr"))
    add("sse pass-through c=10 batched events", paced and paced.batched_events, 0, "events")
    paced_t = by.get(("sse-openai-paced", 10, "lynkr"))
    add("sse translated c=10 batched events", paced_t and paced_t.batched_events, 0, "events")
    per_event = per_event_cpu(rows)
    for c, numbers in sorted(per_event.items()):
        add(
            f"translation CPU per event (c={c})",
            numbers["marginal_us_per_event"],
            15.0,
            "µs",
            note=f"whole stream / 200: {numbers['whole_stream_us_per_event']} µs",
        )
    for name in ("json-cc", "json-tiny", "sse-cc"):
        row = by.get((name, 50, "lynkr"))
        add(f"{name} c=50 RPS vs bare hop", row and row.rps_vs_hop, 0.6, "ratio", higher=True)
    for name, c in (("json-cc", 10), ("sse-cc", 10), ("json-openai", 10)):
        mine, peer = by.get((name, c, "lynkr")), by.get((name, c, "litellm"))
        if mine and peer and peer.added_p50_ms and peer.cpu_ms_per_request:
            add(
                f"{name} c={c} added p50 / LiteLLM's",
                (mine.added_p50_ms or 0) / peer.added_p50_ms,
                0.02,
                "ratio",
            )
            add(
                f"{name} c={c} CPU/request / LiteLLM's",
                (mine.cpu_ms_per_request or 0) / peer.cpu_ms_per_request,
                0.02,
                "ratio",
            )
    add("idle RSS", facts.get("lynkr_idle_rss_mb"), 120, "MB")
    add("lynkr validate wall", facts.get("validate_ms"), 300, "ms")
    add("lynkr serve ready", facts.get("lynkr_ready_ms"), 1500, "ms")
    return checks


def targets_markdown(checks: list[dict[str, Any]]) -> str:
    out = ["| target | measured | limit | verdict |", "|---|---|---|---|"]
    for c in checks:
        if c["met"] is None:
            verdict = c["note"]
        elif c["met"]:
            verdict = "met"
        else:
            verdict = f"**missed** by {abs(c['value'] - c['limit']):.3g} {c['unit']}"
        note = f" ({c['note']})" if c["note"] and c["met"] is not None else ""
        value = "" if c["value"] is None else f"{c['value']} {c['unit']}"
        out.append(f"| {c['target']} | {value}{note} | {c['limit']} | {verdict} |")
    return "\n".join(out)


def git_state() -> str:
    """HEAD, and whether the working tree (what `lynkr serve` ran) had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "lynkr"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{head}{' + uncommitted changes in lynkr/' if dirty else ''}"  # fmt: skip


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="c = 1, 10; fewer requests (< 60 s)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI smoke: json-cc and sse-cc, c = 1, 10, direct vs lynkr, 1 round",
    )
    parser.add_argument("--peers", action="store_true", help="also run LiteLLM proxy")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument(
        "--modes",
        default="direct,hop,lynkr,litellm",
        help="targets to run (default: all; litellm only with --peers)",
    )
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="turn lynkr's access log off (lynkr.yaml has it on)",
    )
    parser.add_argument(
        "--no-sessions",
        dest="sessions",
        action="store_false",
        help="turn lynkr's session recording off (on by default)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also run a lynkr with long-term memory on (target lynkr-memory), same stack",
    )
    parser.add_argument("--json", help="also write rows, facts and target checks here")
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help="with --smoke: store lynkr's CPU ms/request as benchmarks/baseline.json "
        "(what tests/benchmarks/test_smoke.py compares against)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="sample lynkr with py-spy during the run: collapsed stacks to FILE, and a "
        "summary of where its time goes printed at the end",
    )
    args = parser.parse_args(argv)
    plan = scenarios(args.quick or args.smoke)
    if args.smoke:
        plan = [replace(s, requests=100) for s in plan if s.name in SMOKE]
        args.rounds, args.peers, args.modes = 1, False, "direct,lynkr"
    if args.only:
        wanted = set(args.only.split(","))
        plan = [s for s in plan if s.name in wanted]
    if args.peers:
        plan = [s for s in plan if s.peer] if not args.only else plan
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-") as tmp:
        bench = Bench(Path(tmp), args)
        try:
            bench.start()
            loop_policy()
            with profiling(args.profile, bench.procs["lynkr"].pid):
                rows = asyncio.run(
                    measure(bench, plan, args.rounds, args.scale, log=not args.smoke)
                )
            bench.facts["lynkr_end_rss_mb"] = round(rss_mb(bench.procs["lynkr"].pid), 1)
        finally:
            bench.stop()
    facts = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "rounds": args.rounds,
        "access_log": args.access_log,
        "sessions": args.sessions,
        "seconds": round(time.perf_counter() - started, 1),
        "loadavg_at_end": os.getloadavg()[0],
        "git": git_state(),
        **bench.facts,
    }
    checks = check_targets(rows, facts)
    print(
        f"# lynkr benchmark — {facts['date']}, {facts['machine']}, {facts['mode']} mode, "
        f"{facts['rounds']} interleaved rounds, {facts['seconds']} s"
    )
    print("\n" + ", ".join(f"{k}: {v}" for k, v in bench.facts.items()))
    print(markdown(rows, plan))
    per_event = per_event_cpu(rows)
    if per_event:
        print(
            "\nTranslation CPU per event (lynkr): "
            + "; ".join(
                f"c={c}: {v['marginal_us_per_event']} µs marginal, "
                f"{v['whole_stream_us_per_event']} µs whole-stream/200"
                for c, v in per_event.items()
            )
        )
    print("\n## Targets\n")
    print(targets_markdown(checks))
    if args.profile and Path(args.profile).exists():
        print("\n## Where lynkr's time goes (py-spy, % of samples)\n")
        print(profile_summary(Path(args.profile)))
    if args.smoke and args.write_baseline:
        write_baseline(rows, facts)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "facts": facts,
                    "rows": [asdict(r) for r in rows],
                    "targets": checks,
                    "per_event_cpu": per_event,
                },
                indent=2,
            )
        )
    return 0


BASELINE = HERE / "baseline.json"


def smoke_key(row: Row) -> str:
    return f"{row.scenario} c={row.concurrency}"


def write_baseline(rows: list[Row], facts: dict[str, Any]) -> None:
    """benchmarks/baseline.json: lynkr's CPU ms/request per smoke row, and where it was measured."""
    baseline = {
        "about": "lynkr CPU ms per request in `run.py --smoke`; tests/benchmarks/test_smoke.py "
        "fails when a row exceeds `factor` times this. Refresh with "
        "`run.py --smoke --write-baseline` after a deliberate change.",
        "measured": f"{facts['date']}, {facts['machine']}",
        "factor": 2.0,
        "lynkr_cpu_ms_per_request": {
            smoke_key(r): r.cpu_ms_per_request for r in rows if r.mode == "lynkr"
        },
    }
    BASELINE.write_text(json.dumps(baseline, indent=2) + "\n")
    print(f"wrote {BASELINE}")


@contextlib.contextmanager
def profiling(out: str | None, pid: int) -> Iterator[None]:
    """py-spy sampling `pid` while the block runs (py-spy from PATH or the peers venv)."""
    spy = shutil.which("py-spy") or str(HERE / ".peers" / "litellm" / "bin" / "py-spy")
    if not out:
        yield
        return
    if not Path(spy).exists():
        print("profile: py-spy not found (pip install py-spy into benchmarks/.peers/…)")
        yield
        return
    command = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "1000",
               "--output", out, "--nonblocking"]  # fmt: skip
    command += os.environ.get("LYNKR_PYSPY_ARGS", "").split()  # e.g. --native
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def profile_summary(path: Path, top: int = 25) -> str:
    """Inclusive share of samples per function (module:function), from py-spy's raw output."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return "(no samples)"
    rows = ["| function | inclusive % | self % |", "|---|---|---|"]
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    ranked = [(f, c) for f, c in ranked if not f.startswith(_WRAPPERS)]
    for frame, count in ranked[:top]:
        rows.append(f"| `{frame}` | {100 * count / total:.1f} | "
                    f"{100 * own.get(frame, 0) / total:.1f} |")  # fmt: skip
    rows.append(f"\n{total} samples; top self time: " + ", ".join(
        f"`{f}` {100 * c / total:.1f} %"
        for f, c in sorted(own.items(), key=lambda kv: -kv[1])[:12]))  # fmt: skip
    return "\n".join(rows)


# Frames every sample passes through (process start-up, the event loop, thread bootstrap).
_WRAPPERS = ("<frozen", "lynkr/cli.py", "lynkr/__main__", "uvicorn/main.py", "uvicorn/server",
             "uvicorn/_compat", "asyncio/runners.py:Runner.run", "threading.py",
             "asyncio/runners.py:run")  # fmt: skip


def _frame(raw: str) -> str:
    """`func (path/to/module.py:123)` → `module.py:func`."""
    name, _, where = raw.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    short = "/".join(Path(file).parts[-2:]) if file else "?"
    return f"{short}:{name.strip()}"


def loop_policy() -> None:
    """The load generator runs on uvloop when it is installed (less CPU taken from the rest)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


if __name__ == "__main__":
    raise SystemExit(main())
