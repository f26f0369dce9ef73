"""The tool loop of the `server` and `hybrid` execution modes (`tools.execution`).

`client` mode (the default) never comes here: every `tool_use` goes back to
the client, which is what Claude Code wants. In the other two modes lynkr
offers its own tools to the model and runs the calls to them itself:

- `server`: only lynkr's tools are offered (the client, e.g. curl, runs none);
- `hybrid`: lynkr's tools are added to the client's. Calls to the client's
  tools go back to the client exactly as in `client` mode; a step that calls
  both runs lynkr's first, then ends the turn with the client's calls, so no
  call is lost or left without a result.

The client receives one well-formed message, streamed as it is produced
(`StepMerger`); lynkr's own calls appear only as short text notes. Limits —
`max_steps`, `max_tool_calls`, `max_duration_seconds` — end the turn with a
note and the stop reason `pause_turn`, never a hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from lynkr.agent.merge import Event, Step, StepMerger
from lynkr.asgi import SSE_HEADERS, Send, send_json, sse_error_frame
from lynkr.errors import LynkrError
from lynkr.protocol import encode_event
from lynkr.protocol.frames import FrameScanner
from lynkr.providers.base import MessagesRequest
from lynkr.providers.pool import ProviderPool
from lynkr.resilience.plan import FailoverPlan

__all__ = ["LoopLimits", "ToolLoop"]

Mode = Literal["server", "hybrid"]
LIMIT_STOP_REASON = "pause_turn"
_NOTE_CHARS = 1500


class Registry(Protocol):
    """What the loop needs of lynkr's tool registry (`lynkr.agent.tools.ToolRegistry`)."""

    def anthropic_tools(self) -> list[dict[str, Any]]: ...

    def __contains__(self, name: str) -> bool: ...

    def canonical(self, name: str) -> str: ...

    async def execute(self, name: str, arguments: dict[str, Any], context: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class LoopLimits:
    max_steps: int = 8
    max_tool_calls: int = 32
    max_duration_seconds: float = 300.0


class ToolLoop:
    """Runs one client turn: upstream steps, lynkr's tool calls in between."""

    def __init__(
        self,
        *,
        registry: Registry,
        mode: Mode,
        limits: LoopLimits,
        context_for: Callable[[str | None, int, object | None], Any],
        on_run: RunObserver | None = None,
        on_edits: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.registry = registry
        self.mode = mode
        self.limits = limits
        # Builds the tool context of a call: (session id, tool calls so far this turn,
        # the request's memory scope or None).
        self.context_for = context_for
        self.own_tools = registry.anthropic_tools()
        # Told of every turn in which lynkr ran tools, when it ends (the memory's Reflector).
        self.on_run = on_run
        # Told of the files the conversation edited (the repo index refreshes just those).
        self.on_edits = on_edits

    async def run(
        self,
        send: Send,
        request: MessagesRequest,
        pool: ProviderPool,
        plan: FailoverPlan | None,
        session_id: str | None = None,
        on_tool_run: Callable[[], None] | None = None,
        memory_scope: object | None = None,
    ) -> None:
        """Run the turn; `on_tool_run` is called when lynkr runs a tool (its answer then
        has effects a replay would skip: the agent marks it not cacheable)."""
        out: _Output = _StreamOut(send) if request.stream else _JsonOut(send)
        merger = StepMerger(internal_tools=[tool["name"] for tool in self.own_tools])
        if self.on_edits is not None:
            edited = client_edits(request.body)
            if edited:
                self.on_edits(edited)
        turn = _Turn(self, request, merger, out, session_id)
        turn.on_tool_run = on_tool_run
        turn.memory_scope = memory_scope
        try:
            await turn.run(pool, plan)
        except LynkrError as error:
            if not out.started:
                raise
            await out.fail(error)
            return
        if self.on_run is not None and turn.steps:
            self.on_run(memory_scope, _prompt(request.body), turn.steps, turn.finished)

    def tools_for(self, client_tools: Any) -> list[dict[str, Any]]:
        """The tool list sent upstream: lynkr's, and in hybrid mode the client's too."""
        if self.mode == "server" or not isinstance(client_tools, list):
            return list(self.own_tools)
        own = {tool["name"] for tool in self.own_tools}
        return [t for t in client_tools if t.get("name") not in own] + self.own_tools


class _Turn:
    """The state of one client turn across its steps."""

    def __init__(
        self,
        loop: ToolLoop,
        request: MessagesRequest,
        merger: StepMerger,
        out: _Output,
        session_id: str | None,
    ) -> None:
        self.loop = loop
        self.request = request
        self.merger = merger
        self.out = out
        self.session_id = session_id
        self.messages = list(request.body.get("messages") or [])
        self.tools = loop.tools_for(request.body.get("tools"))
        self.calls = 0
        self.on_tool_run: Callable[[], None] | None = None
        self.memory_scope: object | None = None
        # (tool name, succeeded, first line of a failure) of each call lynkr ran.
        self.steps: list[tuple[str, bool, str]] = []
        self.finished = False
        self.stepped = False  # whether an upstream step was asked for already
        self.ends_at = time.monotonic() + loop.limits.max_duration_seconds

    async def run(self, pool: ProviderPool, plan: FailoverPlan | None) -> None:
        limits = self.loop.limits
        for _ in range(limits.max_steps):
            step = await self._step(pool, plan)
            if step is None:
                return  # the upstream's error was passed on; the stream ends there
            self.merger.usage.add(step.usage)
            internal = self.merger.internal_calls(step)
            if not internal:
                self.finished = step.stop_reason == "end_turn"
                await self.out.events(self.merger.finish(step.stop_reason))
                return
            results = await self._run_tools(
                internal, has_client_calls=bool(self.merger.client_calls(step))
            )
            if results is None:
                return
            if self.merger.client_calls(step):
                await self.out.events(self.merger.finish("tool_use"))
                return
            self.messages += [
                {"role": "assistant", "content": step.blocks},
                {"role": "user", "content": results},
            ]
            if time.monotonic() >= self.ends_at:
                await self._stop(f"max_duration_seconds ({limits.max_duration_seconds:g} s)")
                return
        await self._stop(f"max_steps ({limits.max_steps})")

    async def _step(self, pool: ProviderPool, plan: FailoverPlan | None) -> Step | None:
        body = {**self.request.body, "messages": self.messages, "tools": self.tools}
        self._choose_tools(body)
        call = MessagesRequest(
            body=body,
            raw=None,
            betas=self.request.betas,
            anthropic_version=self.request.anthropic_version,
        )
        self.merger.begin_step()
        async with pool.messages(call, plan) as (_, response):
            if not response.stream:
                message = orjson.loads(b"".join([c async for c in response.chunks]))
                step, visible = self.merger.feed_message(message)
                self.out.first_message(message)
                await self.out.blocks(visible)
                return step
            frames = _Frames()
            async for chunk in response.chunks:
                frames.feed(chunk)
                for name, data in frames.found:
                    emitted = self.merger.feed(name, orjson.loads(data))
                    await self.out.events(emitted)
                    if name == "error":
                        return None
                frames.found.clear()
        return self.merger.end_step()

    def _choose_tools(self, body: dict[str, Any]) -> None:
        """The client's `tool_choice` holds for the first step only — a tool it forces is
        called once, not once a step until a limit — and names lynkr's tool where the
        client used the original's name for it (`workspace_index_rebuild`)."""
        choice = body.get("tool_choice")
        if not isinstance(choice, dict):
            return
        if self.stepped:
            body.pop("tool_choice")
        elif choice.get("type") == "tool" and isinstance(choice.get("name"), str):
            body["tool_choice"] = {**choice, "name": self.loop.registry.canonical(choice["name"])}
        self.stepped = True

    async def _run_tools(
        self, calls: list[dict[str, Any]], *, has_client_calls: bool
    ) -> list[dict[str, Any]] | None:
        """lynkr's calls of one step, in order; None when a limit ended the turn."""
        results = []
        for call in calls:
            self.calls += 1
            if self.calls > self.loop.limits.max_tool_calls:
                limit = f"max_tool_calls ({self.loop.limits.max_tool_calls})"
                # The client's calls of this step were already sent: they must stay
                # answerable, so the turn ends as a tool_use turn, not a pause.
                await self._stop(limit, "tool_use" if has_client_calls else LIMIT_STOP_REASON)
                return None
            if self.on_tool_run is not None:
                self.on_tool_run()
            context = self.loop.context_for(self.session_id, self.calls, self.memory_scope)
            outcome = await self.loop.registry.execute(call["name"], call["input"], context)
            self.steps.append((call["name"], not outcome.is_error, _first_line(outcome)))
            path = call["input"].get("file_path") if isinstance(call["input"], dict) else None
            if self.loop.on_edits and call["name"] in _LYNKR_WRITES and isinstance(path, str):
                self.loop.on_edits([path])
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": call["id"],
                    "content": outcome.content,
                    "is_error": bool(outcome.is_error),
                }
            )
            await self.out.events(self.merger.note(_note(call, outcome)))
        return results

    async def _stop(self, limit: str, stop_reason: str = LIMIT_STOP_REASON) -> None:
        text = (
            f"[lynkr stopped this turn: {limit} reached. Ask again to continue, or raise "
            "the limit under tools.limits in lynkr.yaml.]"
        )
        await self.out.events(self.merger.note(text))
        await self.out.events(self.merger.finish(stop_reason))


class _Frames(FrameScanner):
    """The frames of an upstream step the merger reads: named, with data."""

    __slots__ = ("found",)

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, bytes]] = []

    def frame(self, name: str | None, data: bytes, raw: bytes) -> bool:
        if name is not None and data:
            self.found.append((name, data))
        return False


# Tools that change a file, and the input field naming it.
_CLIENT_EDITS = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path",
                 "NotebookEdit": "notebook_path"}  # fmt: skip
_LYNKR_WRITES = frozenset({"lynkr_file_write", "lynkr_file_edit", "lynkr_file_revert"})


def client_edits(body: dict[str, Any]) -> list[str]:
    """The files the client's own tools edited since the previous request: the edit calls of
    the conversation's last assistant message (the client ran them; their results follow)."""
    messages = body.get("messages") or []
    last = next((m for m in reversed(messages) if isinstance(m, dict)
                 and m.get("role") == "assistant"), None)  # fmt: skip
    if last is None or not isinstance(last.get("content"), list):
        return []
    found = []
    for block in last["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_use":
            field = _CLIENT_EDITS.get(str(block.get("name")))
            value = (block.get("input") or {}).get(field) if field else None
            if isinstance(value, str) and value:
                found.append(value)
    return found


# (memory scope, the prompt, the steps, whether the turn finished) → None
RunObserver = Callable[[object | None, str, list[tuple[str, bool, str]], bool], None]


def _prompt(body: dict[str, Any]) -> str:
    """The text of the request's last user message (what the run was asked to do)."""
    users = [
        m for m in body.get("messages") or () if isinstance(m, dict) and m.get("role") == "user"
    ]
    content = users[-1].get("content") if users else ""
    if isinstance(content, str):
        return content
    return "\n".join(
        block.get("text", "")
        for block in content or ()
        if isinstance(block, dict)
        and block.get("type") == "text"
        and not str(block.get("text", "")).startswith("<system-reminder")
    )


def _first_line(outcome: Any) -> str:
    if not outcome.is_error:
        return ""
    content = outcome.content
    if not isinstance(content, str):
        content = " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return content.strip().split("\n", 1)[0][:200]


def _note(call: dict[str, Any], outcome: Any) -> str:
    """What a lynkr tool call did, short enough to keep in the conversation's history."""
    arguments = orjson.dumps(call.get("input") or {}).decode()
    content = outcome.content
    if not isinstance(content, str):
        content = " ".join(b.get("text", "[image]") for b in content if isinstance(b, dict))
    if len(content) > _NOTE_CHARS:
        content = content[:_NOTE_CHARS] + f"… [{len(content) - _NOTE_CHARS} more characters]"
    status = "failed" if outcome.is_error else "returned"
    return f"[lynkr ran {call['name']}({arguments[:300]}) — it {status}:\n{content}]"


class _Output(Protocol):
    started: bool

    def first_message(self, message: dict[str, Any]) -> None: ...

    async def events(self, events: list[Event]) -> None: ...

    async def blocks(self, blocks: list[dict[str, Any]]) -> None: ...

    async def fail(self, error: LynkrError) -> None: ...


class _StreamOut:
    """Events to a streaming client, as they are produced."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    def first_message(self, message: dict[str, Any]) -> None:
        raise AssertionError("a streaming turn gets streamed steps")

    async def blocks(self, blocks: list[dict[str, Any]]) -> None:
        raise AssertionError("a streaming turn gets streamed steps")

    async def events(self, events: list[Event]) -> None:
        if not events:
            return
        payload = b"".join(encode_event(name, orjson.dumps(data)) for name, data in events)
        await self._start()
        await self.send({"type": "http.response.body", "body": payload, "more_body": True})
        if events[-1][0] in ("message_stop", "error"):
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def fail(self, error: LynkrError) -> None:
        frame = sse_error_frame(error.error_type, error.message)
        await self.send({"type": "http.response.body", "body": frame, "more_body": True})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _start(self) -> None:
        if not self.started:
            self.started = True
            await self.send(
                {"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)}
            )


class _JsonOut:
    """One JSON message for a client that does not stream, sent when the turn ends."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False
        self.message: dict[str, Any] = {"type": "message", "role": "assistant"}
        self.content: list[dict[str, Any]] = []

    def first_message(self, message: dict[str, Any]) -> None:
        if "id" not in self.message:
            self.message.update({k: message.get(k) for k in ("id", "model")})

    async def blocks(self, blocks: list[dict[str, Any]]) -> None:
        self.content += blocks

    async def events(self, events: list[Event]) -> None:
        for name, data in events:
            if name == "content_block_start":
                self.content.append(dict(data["content_block"]))
            elif name == "content_block_delta" and data["delta"].get("type") == "text_delta":
                self.content[-1]["text"] = self.content[-1].get("text", "") + data["delta"]["text"]
            elif name == "message_delta":
                self.message.update(data["delta"], usage=data["usage"])
            elif name == "message_stop":
                await self._send()

    async def fail(self, error: LynkrError) -> None:
        raise error

    async def _send(self) -> None:
        self.started = True
        payload = {**self.message, "content": self.content}
        await send_json(self.send, 200, orjson.dumps(payload))
