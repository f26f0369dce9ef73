"""Micro benchmark: CPU per event of the three observers every streamed answer passes.

    .venv/bin/python benchmarks/observers.py            # ≈ 1 min
    .venv/bin/python benchmarks/observers.py --quick    # ≈ 15 s, noisier

The target is ≤ 15 µs of lynkr CPU per event of a 200-event streamed answer, end to
end. Besides the provider's own work (``translate_events.py``), every Anthropic SSE frame
that leaves the server is looked at three more times:

``recorder``  the cache middleware's ``StreamRecorder.feed`` (``lynkr/cache/record.py``),
              chunk by chunk, then ``result()`` once, as ``_Recording`` does on a miss;
``policy``    ``PolicyMiddleware`` with ``policies/default.yaml`` and
              ``enforce_on_responses=True``, called as ASGI around a tiny app that sends
              the chunks (``http.response.start``, one ``http.response.body`` per chunk
              with ``more_body``, an empty last one) to a sink; ``app alone`` is that tiny
              app sending straight to the sink, to subtract;
``assemble``  ``assemble_answer(body, "text/event-stream")`` (``lynkr/protocol/accumulate.py``),
              which the sessions store runs on its writer thread on the whole answer
              (in the same job as the turn's request).

Streams (what Anthropic sends, compact JSON, ``event:`` lines): ``text`` — message_start,
ping, a text block of N ``text_delta``s (short tokens with spaces, quotes, backslash escapes,
newlines, non-ASCII), message_delta, message_stop; ``tool`` — the same head, a one-delta text
block, then a Bash ``tool_use`` block whose input arrives as an empty ``input_json_delta``
and N fragments, ``stop_reason: tool_use`` (the default policy allows the command, so the
policy middleware holds the block and then sends it on unchanged).

Chunkings: ``event`` — one event per network read (a model producing tokens at its own pace;
also what the translating providers yield); ``4k`` — 4096-byte reads cutting events anywhere
(an upstream faster than lynkr). ``assemble`` reads the joined body, so it has one row.

Printed: µs per event = (CPU of an N-event stream − CPU of a 2-event stream) / (N − 2), with
N = 200 for ``text`` and 50 for ``tool`` (the same marginal measure ``run.py`` uses), and µs
for the whole N-event stream. CPU is ``time.process_time`` over many streams, the minimum of
several repeats. No sockets and no event loop: nothing on these paths really waits, so each
coroutine is driven by hand with ``send(None)``.

Measured 2026-11-25 on the 2-core benchmark VM (Python 3.11.7, orjson 3.13.0), µs per event,
before → after. After: plain ``event:``/``data:`` frames cut out of the chunk by hand
(``SSEDecoder`` only for other framings); a delta continuing the previous one, in Anthropic's
compact JSON, recognised by its bytes and only its string parsed; text and thinking kept as
lists of pieces, joined once; the policy middleware passing runs of frames whose bytes cannot
hold a ``tool_use`` without reading them, inline in its ``send``; ``assemble_answer`` with its
own one-pass assembler instead of ``StepMerger``'s client events::

    observer  stream  event chunks   4k chunks
    recorder  text    2.44 → 0.63    2.68 → 0.66
    recorder  tool    2.19 → 0.62    2.55 → 0.65
    policy    text    3.25 → 1.43    2.26 → 0.22    (app alone: 0.23 and 0.01 of these)
    policy    tool    2.96 → 1.07    2.61 → 0.86    (holding the block; ±0.2: the policy's
                                                     own ~370 µs check of the call is in both)
    assemble  text    3.02 → 0.62    (whole body)
    assemble  tool    2.85 → 0.63

All three together, a 200-event text answer one event per chunk: 8.7 → 2.7 µs per event.

Measured 2026-12-07, same VM, the three observers on one shared reader (``FrameScanner`` and
``MessageAccumulator`` in ``lynkr/protocol/``, instead of a copy of the frame cutting in each)
and no reference cycle between a reader and its observer; medians of 3 interleaved runs,
before → after, µs per event (µs per N-event stream)::

    observer  stream  event chunks              4k chunks
    recorder  text    0.70 → 0.65  (158 → 147)  0.74 → 0.65  (162 → 148)
    recorder  tool    0.69 → 0.65   (62 → 57)   0.73 → 0.66   (60 → 58)
    policy    text    1.46 → 1.38  (307 → 290)  0.22 → 0.22   (52 → 52)
    policy    tool    1.22 → 0.95  (433 → 418)  0.97 → 0.86  (416 → 410)   (±0.2, as above)
    assemble  text    0.72 → 0.63  (157 → 140)  (whole body)
    assemble  tool    0.73 → 0.64   (57 → 54)
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lynkr.asgi import Message, Receive, Scope, Send
from lynkr.cache.record import StreamRecorder
from lynkr.config.policy import load_policy_data
from lynkr.middleware.policy import PolicyMiddleware
from lynkr.protocol.accumulate import assemble_answer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from micro import TOKENS, chunked, cpu_per_call, drive

ROOT = Path(__file__).resolve().parent.parent
SMALL = 2
BIG = {"text": 200, "tool": 50}
COMMAND = (
    "cd /home/dev/lynkr && grep -rn 'def feed' lynkr/protocol lynkr/cache lynkr/agent "
    "| sort | head -40 && git log --oneline -5 -- lynkr/protocol/sse.py"
)

# --- streams --------------------------------------------------------------------------------


def _frame(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _head() -> list[bytes]:
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 1200,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 31000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
            "service_tier": "standard",
        },
    }
    return [
        _frame({"type": "message_start", "message": message}),
        _frame({"type": "ping"}),
    ]


def _text_block(index: int, pieces: list[str]) -> list[bytes]:
    start = {"type": "content_block_start", "index": index}
    start["content_block"] = {"type": "text", "text": ""}
    deltas = [
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    stop = {"type": "content_block_stop", "index": index}
    return [_frame(start), *map(_frame, deltas), _frame(stop)]


def _tail(stop_reason: str, events: int) -> list[bytes]:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    usage = {
        "input_tokens": 1200,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 31000,
        "output_tokens": events,
    }
    return [
        _frame({"type": "message_delta", "delta": delta, "usage": usage}),
        _frame({"type": "message_stop"}),
    ]


def text_stream(events: int) -> list[bytes]:
    """One Anthropic text answer of `events` text deltas, as SSE frames."""
    pieces = [TOKENS[i % len(TOKENS)] for i in range(events)]
    return [*_head(), *_text_block(0, pieces), *_tail("end_turn", events)]


def tool_stream(events: int) -> list[bytes]:
    """A short text block, then a Bash tool_use whose input comes in `events` fragments."""
    raw = orjson.dumps({"command": COMMAND, "description": "Find the feed methods"}).decode()
    cuts = [len(raw) * i // events for i in range(events + 1)]
    fragments = [raw[a:b] for a, b in itertools.pairwise(cuts)]
    block = {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "Bash"}
    start = {"type": "content_block_start", "index": 1, "content_block": {**block, "input": {}}}
    deltas = [
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", **p}}
        for p in [{"partial_json": ""}, *({"partial_json": f} for f in fragments)]
    ]
    stop = {"type": "content_block_stop", "index": 1}
    return [
        *_head(),
        *_text_block(0, ["I'll look for them."]),
        _frame(start),
        *map(_frame, deltas),
        _frame(stop),
        *_tail("tool_use", events),
    ]


STREAMS: dict[str, Callable[[int], list[bytes]]] = {"text": text_stream, "tool": tool_stream}


# --- the observers --------------------------------------------------------------------------


def recorder_run(chunks: list[bytes]) -> Callable[[], Any]:
    def once() -> Any:
        recorder = StreamRecorder(limit=1 << 22)
        for chunk in chunks:
            recorder.feed(chunk)
        return recorder.result()

    return once


def _sender(chunks: list[bytes]) -> Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]:
    headers = [(b"content-type", b"text/event-stream; charset=utf-8")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


POLICY = load_policy_data(ROOT / "policies" / "default.yaml")


def policy_run(chunks: list[bytes], *, middleware: bool = True) -> Callable[[], Any]:
    app = _sender(chunks)
    outer = PolicyMiddleware(app, policy=POLICY, enforce_on_responses=True) if middleware else app

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    def once() -> Any:
        out: list[bytes] = []

        async def sink(message: Message) -> None:
            if message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": []}
        drive(outer(scope, receive, sink))
        return b"".join(out)

    return once


def policy_alone_run(chunks: list[bytes]) -> Callable[[], Any]:
    return policy_run(chunks, middleware=False)


def assemble_run(chunks: list[bytes]) -> Callable[[], Any]:
    body = b"".join(chunks)
    return lambda: assemble_answer(body, "text/event-stream")


def check(kind: str) -> None:
    """Each observer sees the stream whole, so a change that breaks one shows here."""
    frames = STREAMS[kind](BIG[kind])
    body = b"".join(frames)
    for how in ("event", "4k"):
        chunks = chunked(frames, how)
        message = recorder_run(chunks)()
        assert message is not None and message["stop_reason"] in ("end_turn", "tool_use"), how
        assert policy_run(chunks)() == body, how
        answer = assemble_run(chunks)()
        assert answer is not None and answer["content"] == message["content"], how
    if kind == "text":
        expected = "".join(TOKENS[i % len(TOKENS)] for i in range(BIG[kind]))
        assert message["content"][0]["text"] == expected
    else:
        assert message["content"][1]["input"]["command"] == COMMAND


OBSERVERS: dict[str, Callable[[list[bytes]], Callable[[], Any]]] = {
    "recorder": recorder_run,
    "policy": policy_run,
    "app alone": policy_alone_run,
    "assemble": assemble_run,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter batches, fewer repeats")
    parser.add_argument("--only", choices=sorted(OBSERVERS), help="one observer")
    args = parser.parse_args()
    seconds, repeats = (0.15, 3) if args.quick else (0.4, 5)
    for kind in STREAMS:
        check(kind)
    print(f"Python {sys.version.split()[0]}, orjson {orjson.__version__}")
    print("| observer | stream | chunking | µs/event (marginal) | µs per N-event stream |")
    print("|---|---|---|---|---|")
    for name in [args.only] if args.only else list(OBSERVERS):
        for kind, make in STREAMS.items():
            for how in ("event",) if name == "assemble" else ("event", "4k"):
                big_n = BIG[kind]
                big = cpu_per_call(
                    OBSERVERS[name](chunked(make(big_n), how)), seconds=seconds, repeats=repeats
                )
                small = cpu_per_call(
                    OBSERVERS[name](chunked(make(SMALL), how)), seconds=seconds, repeats=repeats
                )
                marginal = (big - small) / (big_n - SMALL) * 1e6
                shown = "body" if name == "assemble" else how
                print(
                    f"| {name} | {kind} | {shown} | {marginal:.2f} | {big * 1e6:.0f} |", flush=True
                )


if __name__ == "__main__":
    main()
