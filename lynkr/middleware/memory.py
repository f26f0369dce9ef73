"""Memory: relevant memories added to each new prompt, and each finished turn learnt from.

For every `POST …/v1/messages` whose last message is a person's new prompt
(not tool results alone, not one of Claude Code's side requests):

1. the request's workspace is read (`x-lynkr-workspace`, else the system
   prompt's working directory, else `default`) and, under `memory.scope: key`,
   the caller's key name;
2. the memories relevant to the prompt are retrieved and appended as one text
   block at the end of the last user message — after the request's last
   `cache_control` breakpoint, so the provider's prompt cache is untouched
   (`lynkr.memory.inject`); the answer says how many in `x-lynkr-memories`;
3. when the answer is complete, the prompt and the answer's text are queued
   for extraction, which runs off the request path.

A memory that fails (a broken store, a failing embedder) never fails the
request: the request goes on without memories, and the failure is logged.
Other paths and scope types pass straight through.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import structlog

from lynkr.asgi import (
    AnswerCopy,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    api_path,
    body_or_answer,
    get_context,
    header,
    replay_receive,
)
from lynkr.memory import MemoryService
from lynkr.memory import Scope as MemoryScope
from lynkr.memory.extract import side_request
from lynkr.memory.inject import newest_prompt, with_memories
from lynkr.memory.workspace import WORKSPACE_HEADER, workspace_of
from lynkr.protocol.accumulate import assemble_answer

__all__ = ["MemoryMiddleware"]

_MESSAGES_PATH = "/v1/messages"
_MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a longer answer is not learnt from (its text is kept whole)
_log = structlog.get_logger("lynkr.memory")


class MemoryMiddleware:
    """Adds retrieved memories to new prompts and queues finished turns for extraction.

    The service is shared state (every route of a server uses one); starting
    and closing it is its owner's job (`lynkr serve`'s lifespan).
    """

    def __init__(self, app: ASGIApp, *, service: MemoryService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or api_path(scope["path"].rstrip("/")) != _MESSAGES_PATH
            or self.service.disabled
        ):
            await self.app(scope, receive, send)
            return
        body = await body_or_answer(scope, receive, send)
        if body is None:
            return
        context = get_context(scope)
        named = header(scope, WORKSPACE_HEADER.encode())
        if named is not None:  # header values arrive as latin-1; paths are UTF-8
            named = named.encode("latin-1").decode("utf-8", "replace")
        memory_scope = self.service.scope_for(workspace_of(body, named), context.caller)
        context.memory_scope = memory_scope  # the memory tools of this request work on it
        prompt = newest_prompt(body)
        if not prompt or side_request(body):
            await self.app(scope, replay_receive(scope, receive), send)
            return
        added = 0
        if self.service.settings.injection:
            added = await self._inject(scope, memory_scope, prompt)
        start = _counted(added) if added else None
        if not self.service.settings.extraction:
            counted = AnswerCopy(0).wrap(send, start) if start else send  # keeps no byte
            await self.app(scope, replay_receive(scope, receive), counted)
            return
        copy = AnswerCopy(_MAX_ANSWER_BYTES)
        await self.app(scope, replay_receive(scope, receive), copy.wrap(send, start))
        if copy.complete and copy.status == 200 and not copy.too_large:
            self.service.observe_turn(
                memory_scope,
                prompt,
                partial(answer_text, copy),  # assembled by the worker, not on this path
                session_id=context.session_id,
                turn=len(body.get("messages") or ()),
            )

    async def _inject(self, scope: Scope, memory_scope: MemoryScope, prompt: str) -> int:
        context = get_context(scope)
        try:
            hits = await self.service.retrieve(memory_scope, prompt)
        except Exception as exc:  # a broken memory must not fail the request
            _log.warning("memory_retrieval_failed", error=f"{type(exc).__name__}: {exc}")
            return 0
        assert context.body is not None
        changed = with_memories(context.body, hits)
        if changed is None:
            return 0
        context.body = changed
        context.body_changed = True
        return len(hits)


def _counted(added: int) -> Callable[[Message], Message]:
    """Adds `x-lynkr-memories: N` to the answer's head."""

    def start(message: Message) -> Message:
        headers = [*message.get("headers", ()), (b"x-lynkr-memories", str(added).encode())]
        return {**message, "headers": headers}

    return start


def answer_text(copy: AnswerCopy) -> str:
    """The text blocks of the copied answer, joined."""
    message = assemble_answer(copy.body, copy.content_type)
    blocks = (message or {}).get("content") or []
    return "\n".join(
        block.get("text", "")
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "text"
    )
