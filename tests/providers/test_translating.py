"""The translating adapters' stream loop (translating.py), over an in-memory upstream.

`TranslatingProvider._translate` with the OpenAI adapter's SSE reader and the Ollama
adapter's NDJSON reader must give, for any cut of the upstream bytes, exactly the bytes
of the protocol tests' reference loop (`tests.protocol._openai.translate`: SSEDecoder,
orjson, one `feed()` per chunk) — the golden cases, byte for byte.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lynkr.protocol.ollama import OllamaStreamTranslator
from lynkr.providers.base import MessagesRequest
from lynkr.providers.ollama import OllamaProvider
from lynkr.providers.openai import OpenAIProvider
from lynkr.providers.translating import TranslatingProvider
from tests.protocol._golden import cases
from tests.protocol._openai import translate
from tests.protocol.test_openai_properties import upstream_streams

pytestmark = pytest.mark.anyio


class _Response:
    status = 200
    headers: dict[str, str] = {}  # noqa: RUF012 (never written)

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


class _Client:
    """Stands in for `UpstreamClient`: every call answers 200 with `chunks`."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Any, content: bytes
    ) -> AsyncIterator[_Response]:
        yield _Response(self.chunks)


async def relay(
    provider: TranslatingProvider, chunks: list[bytes], model: str = "claude-x"
) -> bytes:
    """What the adapter sends the client for an upstream answering `chunks`."""
    client = _Client()
    client.chunks = chunks
    provider.client = client  # type: ignore[assignment]
    body = {"model": model, "max_tokens": 100, "stream": True, "messages": []}
    async with provider.messages(MessagesRequest(body=body)) as response:
        assert response.stream
        return b"".join([chunk async for chunk in response.chunks])


class Ids:
    """Generated ids counted from 0 (`restart()` before each run), so runs compare byte for byte."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.counter = itertools.count()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter):024d}"

    def token_hex(self, nbytes: int) -> str:
        return f"{next(self.counter):0{2 * nbytes}x}"


@pytest.fixture
def ids(monkeypatch: pytest.MonkeyPatch) -> Ids:
    ids = Ids()
    monkeypatch.setattr("lynkr.protocol.openai_stream.new_id", ids.new_id)
    monkeypatch.setattr("lynkr.protocol.ollama._message_id", lambda: ids.new_id("msg_"))
    monkeypatch.setattr("lynkr.protocol.ollama.secrets.token_hex", ids.token_hex)
    return ids


def cuts(stream: bytes, seed: int) -> Iterator[list[bytes]]:
    """`stream` whole, event by event, byte by byte (if short) and cut at random places."""
    yield [stream]
    pieces = stream.split(b"\n\n")
    yield [piece + b"\n\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    if len(stream) < 2000:
        yield [stream[i : i + 1] for i in range(len(stream))]
    rng = random.Random(seed)
    for _ in range(20):
        points = sorted({rng.randint(0, len(stream)) for _ in range(rng.randint(1, 12))})
        bounds = [0, *points, len(stream)]
        yield [stream[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("case", cases("openai/stream.json"))
@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
async def test_openai_golden_byte_for_byte(case: dict[str, Any], line_end: bytes, ids: Ids) -> None:
    options = case["options"]
    flavour = "llamacpp" if options.get("context_full_on_length") else "openai"
    cap = options.get("requested_max_tokens")
    provider = OpenAIProvider(
        name="p", flavour=flavour, base_url="http://127.0.0.1:9", max_output_tokens=cap
    )
    stream = case["upstream"].encode().replace(b"\n", line_end)
    ids.restart()
    expected, _ = translate(
        [stream],
        model=options["model"],
        context_full_on_length=options.get("context_full_on_length", False),
        requested_max_tokens=cap,
    )
    for n, chunks in enumerate(cuts(stream, seed=len(stream))):
        ids.restart()
        assert await relay(provider, chunks, model=options["model"]) == expected, n


async def test_openai_reader_ends_at_done_and_reports_bad_json() -> None:
    provider = OpenAIProvider(name="p", base_url="http://127.0.0.1:9")
    text = b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
    # Lone `\r` line ends, a comment, `[DONE]` with spaces, then what must be ignored.
    done = text + b"\r\r: c\r\rdata:  [DONE] \r\rdata: {}\r\r"
    for chunks in ([done], [done[:-1], done[-1:]], [done[:-2], done[-2:]]):
        assert (await relay(provider, chunks)).endswith(b'data: {"type":"message_stop"}\n\n')
    payload = await relay(provider, [text + b"\n\ndata: {nope\n\n"])
    assert b"sent a stream event that is not JSON" in payload
    assert b"message_stop" not in payload


@pytest.mark.parametrize("case", cases("ollama/stream.json"))
async def test_ollama_golden_byte_for_byte(case: dict[str, Any], ids: Ids) -> None:
    stream = b"".join(orjson.dumps(line) + b"\n" for line in case["input"])
    done = any(line.get("done") is True for line in case["input"])
    ids.restart()
    reference = OllamaStreamTranslator(model=case["options"]["model"])
    expected = reference.start()
    for line in case["input"]:
        expected += reference.feed(line)
    expected += reference.finish(done=done)
    provider = OllamaProvider(name="o", model="m")
    for n, chunks in enumerate(cuts(stream.replace(b"\n", b"\r\n"), seed=len(stream))):
        ids.restart()
        assert await relay(provider, chunks, model=case["options"]["model"]) == expected, n


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(upstream=upstream_streams(), points=st.lists(st.integers(0, 10_000), max_size=8))
def test_openai_any_stream_any_cut(
    upstream: tuple[bytes, Any], points: list[int], ids: Ids
) -> None:
    """Hypothesis: reasoning, text, tool calls, comments, CRLF — cut anywhere — the adapter's
    bytes are the reference loop's."""
    stream, _ = upstream
    ids.restart()
    expected, _ = translate([stream], model="claude-x")
    bounds = sorted({point % (len(stream) + 1) for point in points} | {0, len(stream)})
    ids.restart()
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    # Sync, with asyncio.run: hypothesis tests stay out of anyio (see tests/conftest.py).
    provider = OpenAIProvider(name="p", base_url="http://127.0.0.1:9")
    assert asyncio.run(relay(provider, chunks)) == expected
