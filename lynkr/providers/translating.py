"""The shared shape of adapters that translate: Anthropic in, another dialect upstream.

`TranslatingProvider.messages` is the one template every such adapter runs:
answer locally what no upstream of this kind can (a forced server tool, case
49), translate the request, send it, map an error status, then translate the
answer — chunk by chunk for a stream, whole otherwise. Subclasses supply the
dialect: the request translation, the message translation, a stream
translator, and a reader that turns upstream bytes into parsed objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import orjson

from lynkr.errors import UpstreamError
from lynkr.protocol.server_tools import local_server_tool_answer
from lynkr.providers.base import MessagesRequest, ProviderResponse
from lynkr.providers.errors import ok_body, read_error
from lynkr.providers.http import UpstreamClient, UpstreamResponse, forwarded_headers
from lynkr.providers.whole import repair_tool_calls, whole_message

__all__ = ["StreamReader", "StreamTranslator", "TranslatingProvider"]


class StreamTranslator(Protocol):
    """A pure state machine from upstream objects to Anthropic SSE bytes."""

    errored: bool

    def start(self) -> bytes: ...

    def feed(self, item: dict[str, Any]) -> bytes: ...

    def feed_all(self, items: Iterable[dict[str, Any]]) -> bytes:
        """`feed()` each item, stopping after an error; all their frames at once."""
        ...

    def finish(self, *, done: bool) -> bytes: ...

    def fail(self, message: str, error_type: str = "api_error") -> bytes: ...


class StreamReader(Protocol):
    """Upstream body bytes → parsed objects, and whether the stream said it is done."""

    done: bool

    def feed(self, chunk: bytes) -> list[dict[str, Any]]: ...


class TranslatingProvider:
    """Base of the OpenAI-dialect and Ollama adapters; subclasses set the dialect hooks."""

    name: str
    model: str | None
    url: str
    client: UpstreamClient
    fixed_headers: dict[str, str]
    tool_text_repair: bool = False
    forwarded: tuple[str, ...] = ()
    # The provider's credentials, redacted from any upstream text lynkr repeats.
    secrets: tuple[str, ...] = ()

    async def open(self) -> None:
        await self.client.open()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def count_tokens(self, request: MessagesRequest) -> int | None:
        return None  # No counting endpoint in these dialects: the agent estimates locally.

    # The dialect hooks.

    def translate_request(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def translate_message(
        self, answer: dict[str, Any], request: MessagesRequest, model: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def stream_translator(self, request: MessagesRequest, model: str) -> StreamTranslator:
        raise NotImplementedError

    def stream_reader(self) -> StreamReader:
        raise NotImplementedError

    # The template.

    @asynccontextmanager
    async def messages(self, request: MessagesRequest) -> AsyncIterator[ProviderResponse]:
        model = str(request.body.get("model") or self.model or "")
        local = local_server_tool_answer(request.body, model=model)
        if local is not None:
            yield whole_message(local, stream=request.stream)
            return
        # Repairing tool calls written as text needs the whole answer: ask for it
        # whole, then replay it as a stream if the client wanted one.
        upstream_stream = request.stream and not self.tool_text_repair
        body = self.translate_request(request.body, stream=upstream_stream)
        async with self.client.stream(
            "POST", self.url, headers=self.fixed_headers, content=orjson.dumps(body)
        ) as response:
            if response.status >= 300:
                raise await self._error(response)
            headers = forwarded_headers(response, self.forwarded)
            if upstream_stream:
                translator = self.stream_translator(request, model)
                yield ProviderResponse(True, self._translate(response, translator), headers)
                return
            message = self.translate_message(await self._json(response), request, model)
            if self.tool_text_repair:
                message = repair_tool_calls(message, request.body)
            yield whole_message(message, stream=request.stream, headers=headers)

    async def _translate(
        self, response: UpstreamResponse, translator: StreamTranslator
    ) -> AsyncIterator[bytes]:
        yield translator.start()
        reader = self.stream_reader()
        try:
            # Once per upstream chunk: keep this loop lean (the ≤ 15 µs per-event budget).
            async for chunk in response.iter_chunks():
                out = translator.feed_all(reader.feed(chunk))
                if out:
                    yield out
                if reader.done or translator.errored:
                    break
        except UpstreamError as error:
            yield translator.fail(error.message, error.error_type)
            return
        if not translator.errored:
            yield translator.finish(done=reader.done)

    async def _json(self, response: UpstreamResponse) -> dict[str, Any]:
        return ok_body(await response.read(), provider=self.name, secrets=self.secrets)

    async def _error(self, response: UpstreamResponse) -> Exception:
        return await read_error(
            response, provider=self.name, model=self.model, secrets=self.secrets
        )
