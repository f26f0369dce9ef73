"""The start cost of one sandboxed tool call: the same commands plain and under bubblewrap.

    .venv/bin/python benchmarks/sandbox.py [--calls 200]

Runs each command through `run_process` (what `lynkr_shell` and the test
profiles use) unconfined and in lynkr's `Bubblewrap`, interleaved call by
call so both see the same machine, and prints p50/p90 per call, the ratio and
the added milliseconds. Target: at most 10 ms added per call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from lynkr.agent.tools.shell import run_process
from lynkr.sandbox import Bubblewrap, Sandbox, Unconfined

COMMANDS = {"true": ["true"], "python3 -c pass": ["python3", "-c", "pass"]}
ENV = {"PATH": "/usr/bin:/bin"}


async def _once(sandbox: Sandbox, argv: list[str], workspace: Path) -> float:
    started = time.perf_counter()
    result = await run_process(
        argv, cwd=workspace, env=ENV, timeout=30, max_output_bytes=4096, sandbox=sandbox
    )
    assert result.exit_code == 0, result.output
    return (time.perf_counter() - started) * 1000


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        workspace = Path(directory)
        sandboxes: dict[str, Sandbox] = {
            "plain": Unconfined(),
            "bubblewrap": Bubblewrap(workspace=workspace, protected=[workspace / ".lynkr"]),
        }
        print(
            "| command | plain p50 / p90 ms | bubblewrap p50 / p90 ms | ratio p50 | added p50 ms |"
        )
        print("|---|---|---|---|---|")
        for name, argv in COMMANDS.items():
            times: dict[str, list[float]] = {key: [] for key in sandboxes}
            for _ in range(5):  # warm the page cache for both
                for sandbox in sandboxes.values():
                    await _once(sandbox, argv, workspace)
            for _ in range(calls):
                for key, sandbox in sandboxes.items():
                    times[key].append(await _once(sandbox, argv, workspace))
            p50 = {key: statistics.median(values) for key, values in times.items()}
            p90 = {key: statistics.quantiles(values, n=10)[-1] for key, values in times.items()}
            print(
                f"| `{name}` | {p50['plain']:.2f} / {p90['plain']:.2f} "
                f"| {p50['bubblewrap']:.2f} / {p90['bubblewrap']:.2f} "
                f"| {p50['bubblewrap'] / p50['plain']:.1f}× "
                f"| {p50['bubblewrap'] - p50['plain']:.2f} |"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    asyncio.run(main(parser.parse_args().calls))
