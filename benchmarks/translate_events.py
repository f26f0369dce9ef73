"""Micro benchmark: CPU per upstream event of a translated stream (OpenAI or Ollama → Anthropic).

    .venv/bin/python benchmarks/translate_events.py            # ≈ 30 s
    .venv/bin/python benchmarks/translate_events.py --quick    # ≈ 8 s, noisier

The target "Streaming, OpenAI→Anthropic translation, 200 events: lynkr CPU ≤ 15 µs per
event" is checked end to end by ``run.py`` (scenarios ``sse-openai-200ev`` vs ``sse-openai-2ev``,
whole server process). This script isolates the translation path alone: upstream body bytes,
cut into network-sized chunks, go through exactly what the server runs for a translated
stream — ``OpenAIProvider.messages()`` (or ``OllamaProvider``'s) with its ``UpstreamClient``
swapped for an in-memory fake, then every chunk of ``ProviderResponse.chunks`` read — so the
SSE (or NDJSON) decoding, JSON parsing, the stream state machine (docs/protocol.md B.5) and
the frame encoding are all counted, and the ASGI server, the middlewares, the agent's relay
and aiohttp are not. No sockets and no event loop: nothing in the path really waits, so each
coroutine is driven by hand with ``send(None)``.

Streams (built like real upstream output, every chunk with OpenAI's full envelope — id,
object, created, model, system_fingerprint, ``logprobs: null``, ``usage: null`` as sent with
``stream_options.include_usage``):

``text``  role chunk, N content deltas (short tokens with spaces, quotes, newlines, non-ASCII),
          a finish chunk, a usage chunk, ``[DONE]``;
``tool``  role chunk, one text delta, a tool call's head (id, name) and N argument fragments,
          ``finish_reason: tool_calls``, usage, ``[DONE]``;
``ollama`` N NDJSON lines with ``message.content``, then the ``done: true`` line.

Chunkings: ``event`` — one upstream event per network read (a model producing tokens at its
own pace, the common case); ``4k`` — 4096-byte reads cutting events anywhere (an upstream
faster than lynkr, like ``run.py``'s unpaced fake).

Printed per stream kind and chunking: µs per event = (CPU of an N=200 stream − CPU of an
N=2 stream) / 198, the same marginal measure ``run.py`` uses, and µs for a whole 200-event
stream. CPU is ``time.process_time`` over many streams, the minimum of several repeats.

One more row, outside the adapter but on every translated event: ``SSEDecoder`` reading the
translated ``text`` stream as the adapter yields it (``event`` chunking: one chunk per upstream
event), which the cache recorder and the policy middleware each do to every frame they pass.

Measured 2026-11-25 on the 2-core benchmark VM (Python 3.11.7, orjson 3.13.0), µs per event,
before → after the translation-path work (templated frames, the data-only SSE decoder, the
short paths for one-event chunks and content-only deltas, one `feed_all` per chunk):

    text   event 8.6 → 2.6    4k 6.9 → 2.0
    tool   event 10.0 → 3.5   4k 9.2 → 2.8
    ollama event 4.4 → 2.1    4k 2.5 → 1.2
    SSEDecoder on text's output  4.3 → 1.0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lynkr.protocol.sse import SSEDecoder
from lynkr.providers.base import MessagesRequest
from lynkr.providers.ollama import OllamaProvider
from lynkr.providers.openai import OpenAIProvider
from lynkr.providers.translating import TranslatingProvider

sys.path.insert(0, str(Path(__file__).resolve().parent))
from micro import TOKENS, chunked, cpu_per_call, drive

BIG, SMALL = 200, 2
ARG_FRAGMENTS = ['{"', "file", "_path", '":"', "/src", "/lynkr", "/proto", "col", ".py", '"}']

# --- upstream streams -----------------------------------------------------------------------


def _openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_a1b2c3d4e5",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def _openai_tail(events: int, finish: str) -> list[bytes]:
    usage = {
        "id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_a1b2c3d4e5",
        "choices": [],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": events,
            "total_tokens": 1200 + events,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        },
    }
    return [_sse(_openai_chunk({}, finish)), _sse(usage), b"data: [DONE]\n\n"]


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def text_events(events: int) -> list[bytes]:
    """One OpenAI text answer, as a list of SSE events."""
    head = [_sse(_openai_chunk({"role": "assistant", "content": "", "refusal": None}))]
    body = [_sse(_openai_chunk({"content": TOKENS[i % len(TOKENS)]})) for i in range(events)]
    return head + body + _openai_tail(events, "stop")


def tool_events(events: int) -> list[bytes]:
    """One OpenAI tool call whose arguments come in `events` fragments."""
    call = {
        "index": 0,
        "id": "call_Xy12Ab34Cd56Ef78Gh90Ij12",
        "type": "function",
        "function": {"name": "Read", "arguments": ""},
    }
    head = [
        _sse(_openai_chunk({"role": "assistant", "content": None, "refusal": None})),
        _sse(_openai_chunk({"content": "Reading it."})),
        _sse(_openai_chunk({"tool_calls": [call]})),
    ]
    # Fragments of one long string value, closed at the end so the arguments are valid JSON.
    pieces = ['{"file_path":"'] + [
        ARG_FRAGMENTS[i % len(ARG_FRAGMENTS)].replace('"', "") for i in range(events - 2)
    ]
    pieces.append('"}')
    body = [
        _sse(_openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        for piece in pieces
    ]
    return head + body + _openai_tail(events, "tool_calls")


def ollama_events(events: int) -> list[bytes]:
    """One Ollama `/api/chat` text answer, as NDJSON lines."""

    def line(content: str, done: bool = False) -> bytes:
        item: dict[str, Any] = {
            "model": "qwen3-coder:30b",
            "created_at": "2026-11-25T10:00:00.123456789Z",
            "message": {"role": "assistant", "content": content},
            "done": done,
        }
        if done:
            item |= {
                "done_reason": "stop",
                "total_duration": 4883583458,
                "prompt_eval_count": 1200,
                "eval_count": events,
            }
        return orjson.dumps(item) + b"\n"

    return [line(TOKENS[i % len(TOKENS)]) for i in range(events)] + [line("", done=True)]


# --- the server's path, without sockets -----------------------------------------------------


class _FakeResponse:
    status = 200
    headers: dict[str, str] = {}  # noqa: RUF012 (read-only here)

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        # The same one async-generator layer as `UpstreamResponse.iter_chunks`.
        for chunk in self._chunks:
            yield chunk


class _FakeClient:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Any, content: bytes
    ) -> AsyncIterator[_FakeResponse]:
        yield _FakeResponse(self.chunks)


async def _one_stream(provider: TranslatingProvider, request: MessagesRequest) -> int:
    size = 0
    async with provider.messages(request) as response:
        async for chunk in response.chunks:
            size += len(chunk)
    return size


def _provider(kind: str) -> tuple[TranslatingProvider, _FakeClient]:
    client = _FakeClient()
    provider: TranslatingProvider
    if kind == "ollama":
        provider = OllamaProvider(name="bench", model="qwen3-coder:30b")
    else:
        provider = OpenAIProvider(name="bench", base_url="http://127.0.0.1:9", api_key="k")
    provider.client = client  # type: ignore[assignment]
    return provider, client


REQUEST = MessagesRequest(
    body={
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
)
STREAMS: dict[str, Callable[[int], list[bytes]]] = {
    "text": text_events,
    "tool": tool_events,
    "ollama": ollama_events,
}


def cpu_per_stream(kind: str, how: str, events: int, *, seconds: float, repeats: int) -> float:
    """Seconds of CPU for one whole stream: the minimum over `repeats` timed batches."""
    provider, client = _provider(kind)
    client.chunks = chunked(STREAMS[kind](events), how)
    request = MessagesRequest(body=dict(REQUEST.body))
    assert drive(_one_stream(provider, request)) > 0
    return cpu_per_call(
        lambda: drive(_one_stream(provider, request)), seconds=seconds, repeats=repeats
    )


def translated(events: int) -> list[bytes]:
    """The chunks the adapter yields for the `text` stream, one upstream event per read."""
    provider, client = _provider("text")
    client.chunks = chunked(text_events(events), "event")
    out: list[bytes] = []

    async def collect() -> None:
        async with provider.messages(MessagesRequest(body=dict(REQUEST.body))) as response:
            out.extend([chunk async for chunk in response.chunks])

    drive(collect())
    return out


def decoder_cpu(events: int, *, seconds: float, repeats: int) -> float:
    """Seconds of CPU for `SSEDecoder` to read one translated stream, chunk by chunk."""
    chunks = translated(events)

    def once() -> None:
        decoder = SSEDecoder()
        for chunk in chunks:
            decoder.feed(chunk)

    return cpu_per_call(once, seconds=seconds, repeats=repeats)


def check_output() -> Iterator[str]:
    """The text stream's Anthropic events, summarised, so a change that breaks them shows."""
    provider, client = _provider("text")
    client.chunks = chunked(text_events(3), "4k")
    out: list[bytes] = []

    async def collect() -> None:
        async with provider.messages(MessagesRequest(body=dict(REQUEST.body))) as response:
            out.extend([chunk async for chunk in response.chunks])

    drive(collect())
    for frame in b"".join(out).split(b"\n\n")[:-1]:
        yield frame.split(b"\n", 1)[0].decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter batches, fewer repeats")
    parser.add_argument("--only", choices=sorted(STREAMS), help="one stream kind")
    args = parser.parse_args()
    seconds, repeats = (0.15, 3) if args.quick else (0.4, 5)
    assert list(check_output())[-1] == "event: message_stop"
    print(f"Python {sys.version.split()[0]}, orjson {orjson.__version__}")
    print("| stream | chunking | µs/event (marginal) | µs per 200-event stream |")
    print("|---|---|---|---|")
    for kind in [args.only] if args.only else list(STREAMS):
        for how in ("event", "4k"):
            big = cpu_per_stream(kind, how, BIG, seconds=seconds, repeats=repeats)
            small = cpu_per_stream(kind, how, SMALL, seconds=seconds, repeats=repeats)
            marginal = (big - small) / (BIG - SMALL) * 1e6
            print(f"| {kind} | {how} | {marginal:.2f} | {big * 1e6:.0f} |", flush=True)
    if not args.only:
        big = decoder_cpu(BIG, seconds=seconds, repeats=repeats)
        small = decoder_cpu(SMALL, seconds=seconds, repeats=repeats)
        marginal = (big - small) / (BIG - SMALL) * 1e6
        print(f"| SSEDecoder on text's output | event | {marginal:.2f} | {big * 1e6:.0f} |")


if __name__ == "__main__":
    main()
