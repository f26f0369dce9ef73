"""The relay on one endless line: linear time in its size, however finely it is cut.

    .venv/bin/python benchmarks/frames_line.py [--megabytes 100]

Feeds `AnthropicStreamRelay` a `data:` line of N MiB that never ends, in
64 KiB chunks (what a decompressed upstream read delivers), with the frame cap
raised above N so the whole line is scanned, and prints the time per MiB at
a quarter, half and all of N: flat per-MiB time means linear. Then the
default cap: where the relay stops the stream.
"""

from __future__ import annotations

import argparse
import time

from lynkr.protocol import AnthropicStreamRelay, FrameTooLarge
from lynkr.protocol.relay import MAX_FRAME

CHUNK = b"x" * 65536
MIB = 1024 * 1024


def scan(megabytes: int, cap: int) -> tuple[float, int]:
    """Seconds to feed `megabytes` of one line (or until the cap stops it), bytes fed."""
    relay = AnthropicStreamRelay(None, max_frame=cap)
    relay.feed(b"event: ping\ndata: {}\n\n")
    relay.feed(b"data: ")
    fed = 0
    started = time.perf_counter()
    try:
        while fed < megabytes * MIB:
            relay.feed(CHUNK)
            fed += len(CHUNK)
    except FrameTooLarge:
        pass
    return time.perf_counter() - started, fed


def main(megabytes: int) -> None:
    print("| line | chunks | seconds | ms per MiB |")
    print("|---|---|---|---|")
    for size in (megabytes // 4, megabytes // 2, megabytes):
        seconds, fed = scan(size, cap=(megabytes + 1) * MIB)
        print(f"| {size} MiB | {fed // len(CHUNK)} | {seconds:.3f} | {seconds * 1000 / size:.2f} |")
    seconds, fed = scan(megabytes, cap=MAX_FRAME)
    cap = MAX_FRAME // MIB
    print(f"\nDefault cap ({cap} MiB): stopped after {fed / MIB:.0f} MiB in {seconds:.3f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    main(parser.parse_args().megabytes)
