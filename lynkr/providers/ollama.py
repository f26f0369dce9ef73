"""The adapter for Ollama's native `/api/chat` (NDJSON), PROTOCOL.md B.6.

Ollama also serves an Anthropic-compatible `/v1/messages` (use `type:
anthropic` for that); the native API is what older versions have and what
exposes `num_ctx`, whose small default silently truncates Claude Code's
~20k-token prompts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson

from lynkr.errors import UpstreamError
from lynkr.protocol import NDJSONDecoder
from lynkr.protocol.ollama import (
    OllamaOptions,
    OllamaStreamTranslator,
    ollama_to_anthropic_message,
    to_ollama_request,
)
from lynkr.protocol.server_tools import local_server_tool_answer
from lynkr.providers.base import MessagesRequest, ProviderResponse
from lynkr.providers.errors import error_from_upstream
from lynkr.providers.http import Timeouts, UpstreamClient, UpstreamResponse
from lynkr.providers.whole import repair_tool_calls, whole_message

__all__ = ["OllamaProvider"]


class OllamaProvider:
    """Calls Ollama's `/api/chat`, translating Anthropic ⇄ Ollama both ways."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str,
        timeouts: Timeouts | None = None,
        headers: Mapping[str, str] | None = None,
        max_output_tokens: int | None = None,
        num_ctx: int | None = None,
        think: bool | str | None = None,
        keep_alive: str | None = None,
        supports_images: bool = True,
        tool_text_repair: bool = False,
    ) -> None:
        if not model:
            raise ValueError(f"provider '{name}' of type ollama needs a model (e.g. qwen3-coder)")
        self.name = name
        self.model = model
        base = (base_url or "http://127.0.0.1:11434").rstrip("/")
        self.url = base if base.endswith("/api/chat") else base + "/api/chat"
        self.options = OllamaOptions(
            model=model,
            max_output_tokens=max_output_tokens,
            num_ctx=num_ctx,
            think=think,
            supports_images=supports_images,
            keep_alive=keep_alive,
        )
        self.tool_text_repair = tool_text_repair
        self.fixed_headers = {"content-type": "application/json", **dict(headers or {})}
        if api_key:
            self.fixed_headers["authorization"] = f"Bearer {api_key}"
        self.client = UpstreamClient(name=name, timeouts=timeouts or Timeouts())

    async def open(self) -> None:
        await self.client.open()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def count_tokens(self, request: MessagesRequest) -> int | None:
        return None  # Ollama has no counting endpoint: the agent estimates locally.

    @asynccontextmanager
    async def messages(self, request: MessagesRequest) -> AsyncIterator[ProviderResponse]:
        client_model = str(request.body.get("model") or self.model)
        local = local_server_tool_answer(request.body, model=client_model)
        if local is not None:
            yield whole_message(local, stream=request.stream)
            return
        upstream_stream = request.stream and not self.tool_text_repair
        body = to_ollama_request(request.body, self.options)
        body["stream"] = upstream_stream
        async with self.client.stream(
            "POST", self.url, headers=self.fixed_headers, content=orjson.dumps(body)
        ) as response:
            if response.status >= 300:
                raise await self._error(response)
            if upstream_stream:
                yield ProviderResponse(True, self._translate_stream(response, client_model))
            else:
                message = await self._whole(response, request, client_model)
                yield whole_message(message, stream=request.stream)

    async def _translate_stream(
        self, response: UpstreamResponse, model: str
    ) -> AsyncIterator[bytes]:
        translator = OllamaStreamTranslator(model=model)
        yield translator.start()
        decoder = NDJSONDecoder()
        done = False
        try:
            async for chunk in response.iter_chunks():
                out = bytearray()
                for line in decoder.feed(chunk):
                    if isinstance(line, dict):
                        out += translator.feed(line)
                        done = done or line.get("done") is True
                if out:
                    yield bytes(out)
                if done or translator.errored:
                    break
        except UpstreamError as error:
            yield translator.fail(error.message, error.error_type)
            return
        if not translator.errored:
            yield translator.finish(done=done)

    async def _whole(
        self, response: UpstreamResponse, request: MessagesRequest, model: str
    ) -> dict[str, Any]:
        try:
            answer = orjson.loads(await response.read())
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"provider '{self.name}' answered with a body that is not JSON", provider=self.name
            ) from exc
        message = ollama_to_anthropic_message(answer, model=model)
        if self.tool_text_repair:
            message = repair_tool_calls(message, request.body)
        return message

    async def _error(self, response: UpstreamResponse) -> Exception:
        body = await response.read(limit=1024 * 1024)
        return error_from_upstream(
            response.status, body, response.headers, provider=self.name, model=self.model
        )
