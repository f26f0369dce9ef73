"""Policy enforcement: request rules before the app runs; tool-call rules on its answers.

Requests (every POST with a JSON body, when the policy has request rules): the
pure `evaluate_request` decides. A denial is answered here with Anthropic's
`403 permission_error` naming the rule and how to change it; rewrites
(`strip_tools`, `max_tokens` clamp, `thinking: strip`) change the parsed body
in the request context (`body_changed`), so the app behind receives the
re-serialised body, and each is logged on the `lynkr.policy` logger.

Responses (`enforce_on_responses`): each `tool_use` block the model returns is
checked with `evaluate_tool_call`, so a client that runs tools itself (Claude
Code) never receives a call the policy denies.

- JSON: a denied block becomes a text block saying what was refused and why;
  when no `tool_use` is left, `stop_reason: tool_use` becomes `end_turn`.
- SSE: text and thinking blocks are relayed event by event as always; a
  `tool_use` block alone is held from its `content_block_start` to its
  `content_block_stop` (its input is only known then, and the client cannot run
  it earlier anyway), then sent as it came or replaced, at the same index, by
  the same text block as above; `message_delta`'s `stop_reason` is fixed the
  same way. Nothing already sent is ever retracted, so no `event: error` is
  needed. A compressed response (`content-encoding`) is passed through unchecked.

The policy is given loaded (`Policy`, or the data of a policy file): the
constructor does no I/O. `lynkr.yaml` names a file (`policy: policies/x.yaml`);
the stack resolves it against the config's directory and loads it with
`lynkr.config.policy.load_policy_data`, which reports errors with line and column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import structlog

from lynkr.asgi import (
    ASGIApp,
    Message,
    Receive,
    RequestContext,
    Scope,
    Send,
    body_or_answer,
    get_context,
    replay_receive,
    response_form,
    send_error,
    sse_error_frame,
    without_headers,
)
from lynkr.errors import PermissionDenied, anthropic_error_body
from lynkr.policy import (
    Decision,
    Policy,
    ToolContext,
    Workspace,
    evaluate_request,
    evaluate_tool_call,
)
from lynkr.protocol import encode_event, estimate_input_tokens
from lynkr.protocol.frames import FrameScanner, FrameTooLarge
from lynkr.protocol.sse import delta_frame_prefix

__all__ = ["PolicyMiddleware"]

logger = structlog.get_logger("lynkr.policy")


class PolicyMiddleware:
    """Enforces a policy's request rules, and (optionally) its tool rules on responses."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Policy | Mapping[str, Any] | None = None,
        enforce_on_responses: bool = False,
        workspace_root: str | None = None,
    ) -> None:
        if isinstance(policy, (str, bytes)) or hasattr(policy, "__fspath__"):
            raise ValueError(
                f"policy: got the file name {policy!r}; pass the loaded policy, e.g. "
                "policy=load_policy_data(path) from lynkr.config.policy (lynkr.yaml does this)"
            )
        self.app = app
        self.policy = policy if isinstance(policy, Policy) else Policy.from_data(policy or {})
        self.enforce_on_responses = enforce_on_responses
        self.workspace = Workspace(workspace_root) if workspace_root else None
        self._checks_requests = self.policy.request.active

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self._checks_requests:
            body = await body_or_answer(scope, receive, send)
            if body is None:
                return
            if not await self._apply_request_rules(scope, body, send):
                return
            receive = replay_receive(scope, receive)
        if self.enforce_on_responses:
            send = _Responder(self, send, get_context(scope)).send
        await self.app(scope, receive, send)

    async def _apply_request_rules(self, scope: Scope, body: dict[str, Any], send: Send) -> bool:
        """Deny (answering 403) or apply rewrites to the context's body; True to go on."""
        context = get_context(scope)
        decision, new_body = evaluate_request(self.policy, body, count_tokens=estimate_input_tokens)
        if not decision.allowed:
            logger.info("policy.denied", rule=decision.rule, request_id=context.request_id)
            error = PermissionDenied(self._message(decision, "Request"))
            await send_error(send, error, request_id=context.request_id)
            return False
        if decision.rewrites:
            context.body = new_body
            context.body_changed = True
            for rewrite in decision.rewrites:
                logger.info(
                    "policy.rewrite",
                    rule=rewrite.rule,
                    detail=rewrite.detail,
                    request_id=context.request_id,
                )
        return True

    def _message(self, decision: Decision, what: str) -> str:
        name = f" '{self.policy.name}'" if self.policy.name else ""
        return f"{what} refused by lynkr policy{name}: {decision.reason} (rule {decision.rule})"

    def check_tool_use(self, name: str, tool_input: Any, calls_so_far: int = 0) -> Decision:
        """The decision for one `tool_use` block (also what `lynkr policy check` prints)."""
        context = ToolContext(workspace=self.workspace, calls_in_turn=calls_so_far)
        return evaluate_tool_call(self.policy, name, tool_input, context)

    def refusal_text(self, name: str, decision: Decision) -> str:
        return "[lynkr] " + self._message(decision, f"The tool call {name}")


class _Responder(FrameScanner):
    """One response: checks the tool_use blocks of a JSON body or of an SSE stream.

    It reads a stream as a `FrameScanner` (its frames come to `frame`).
    """

    def __init__(self, middleware: PolicyMiddleware, send: Send, context: RequestContext) -> None:
        super().__init__(max_frame=_MAX_FRAME)
        self.middleware = middleware
        self.downstream = send
        self.context = context
        self.mode = "pass"
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        # Every frame of every streamed answer passes here, so the common ones are cheap:
        # outside a held block, a run of frames goes on unread unless its bytes say
        # `tool_use` (a block starting, or a `stop_reason` to fix) or hold a `\u` escape
        # (which could spell it); inside one, the scanner reads its input fragments by
        # their bytes into `held_json`; every other frame is read by `on_event`.
        self.pass_unless(b"tool_use")
        self.out: list[bytes] = []  # what the frames of the chunk being relayed became
        self.held: list[bytes] = []  # raw events of the tool_use block being held
        self.held_block: dict[str, Any] | None = None
        self.held_json: list[str] = []
        self.allowed_calls = 0
        self.refused_calls = 0
        self.broken = False  # the stream broke the grammar around a tool_use: nothing more goes

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and self.mode == "sse":
            # Once per chunk of a stream: inline, not one more coroutine (nor one more call).
            more = message.get("more_body", False)
            body = message.get("body", b"")
            try:
                out = b"" if self.broken else self.feed(body)
                if not more:
                    self.flush()
            except FrameTooLarge:
                out = self.fail_closed(f"an event not ended within {_MAX_FRAME:,} bytes")
            if self.out:  # what the frames the scanner could not pass unread became
                out = b"".join([*self.out, out])
                self.out = []
            if out or not more:
                if out is not body:  # else passed whole, as it came
                    message = {"type": "http.response.body", "body": out, "more_body": more}
                await self.downstream(message)
        elif message["type"] == "http.response.start":
            await self.on_start(message)
        elif message["type"] == "http.response.body" and self.mode == "json":
            await self.on_json_body(message)
        else:
            await self.downstream(message)

    async def on_start(self, message: Message) -> None:
        self.mode = response_form(message) or "pass"
        if self.mode == "json":
            self.start = message  # held until the body is known
            return
        if self.mode == "sse":
            message["headers"] = without_headers(message.get("headers", []), b"content-length")
        await self.downstream(message)

    # JSON

    async def on_json_body(self, message: Message) -> None:
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        body = self.rewrite_message(body)
        assert self.start is not None
        start = dict(self.start)
        if self.broken:
            start["status"] = 502
        headers = without_headers(start.get("headers", []), b"content-length")
        start["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
        await self.downstream(start)
        await self.downstream({"type": "http.response.body", "body": body})

    def rewrite_message(self, raw: bytes) -> bytes:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if b"tool_use" in raw or b"\\u" in raw:
                # Unreadable to lynkr, but a laxer JSON reader could find a tool_use in it.
                self.broken = True
                return anthropic_error_body(
                    "api_error",
                    "The upstream's answer was not valid JSON, so lynkr's policy could not "
                    "check its tool calls. Retry the request.",
                    None,
                )
            return raw
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            return raw
        content = [self.checked_block(block) for block in message["content"]]
        if self.refused_calls == 0:
            return raw
        message["content"] = content
        if self.allowed_calls == 0 and message.get("stop_reason") == "tool_use":
            message["stop_reason"] = "end_turn"
        return orjson.dumps(message)

    def checked_block(self, block: Any) -> Any:
        if not isinstance(block, dict) or block.get("type") != "tool_use":
            return block
        name = str(block.get("name", ""))
        decision = self.middleware.check_tool_use(name, block.get("input"), self.allowed_calls)
        if decision.allowed:
            self.allowed_calls += 1
            return block
        self.refused_calls += 1
        logger.info("policy.tool_use_refused", tool=name, rule=decision.rule)
        return {"type": "text", "text": self.middleware.refusal_text(name, decision)}

    # SSE

    def frame(self, name: str | None, data: bytes, raw: bytes) -> bool:
        """One frame the scanner could not pass unread; True once the stream is stopped."""
        self.out.append(self.on_event(name, data, raw))
        return self.broken

    def on_event(self, name: str | None, data: bytes, raw: bytes) -> bytes:
        if (
            self.held_block is None
            and b"tool_use" not in data
            and (_BACKSLASH not in data or b"\\u" not in data)
        ):
            return raw  # neither a tool_use block starting nor a stop_reason to fix
        try:
            payload = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            if b"tool_use" in data or b"\\u" in data:
                # Unreadable to lynkr, but a laxer JSON reader (a lone surrogate, NaN…)
                # could see a tool_use in it: it cannot be checked, so it does not pass.
                return self.fail_closed("a stream event that is not valid JSON")
            return self.pass_or_hold(raw)
        kind = payload.get("type")
        block = payload.get("content_block")
        if self.held_block is not None and kind == "content_block_start":
            # Anthropic finishes one block before it starts the next (docs/protocol.md B.1).
            return self.fail_closed("a content block starting inside a tool_use block")
        if kind == "content_block_start" and isinstance(block, dict) and _is_tool_use(block):
            self.held_block = {**block, "index": payload.get("index", 0)}
            self.held, self.held_json = [raw], []
            self.follow(_input_frame(self.held_block["index"]), self.held_json, self.held)
            self.pass_unless(None)
            return b""
        held_index = None if self.held_block is None else self.held_block["index"]
        if self.held_block is not None and kind == "content_block_delta":
            if payload.get("index") != held_index:
                return self.fail_closed("a delta of another block inside a tool_use block")
            delta = payload.get("delta") or {}
            self.held_json.append(str(delta.get("partial_json", "")))
            self.held.append(raw)
            return b""
        if self.held_block is not None and kind == "content_block_stop":
            if payload.get("index") != held_index:
                return self.fail_closed("another block stopping inside a tool_use block")
            self.held.append(raw)
            return self.release_block()
        if kind == "message_delta" and isinstance(payload.get("delta"), dict):
            return self.fix_stop_reason(payload, raw, name or "message_delta")
        return raw

    def fail_closed(self, what: str) -> bytes:
        """End the stream with an error instead of passing a tool_use lynkr cannot check.

        An upstream that breaks the stream grammar (B.1) around a tool_use block could
        hide a call from the policy; the client gets an `event: error` (Claude Code then
        retries without streaming, where the whole answer is checked) and nothing after.
        """
        self.broken = True
        self.held_block, self.held, self.held_json = None, [], []
        self.close()
        logger.warning("policy.stream_refused", reason=what)
        message = (
            f"The upstream's answer stream had {what}, so lynkr's policy could not check "
            "its tool calls; the stream was stopped. Retry the request."
        )
        return sse_error_frame("api_error", message)

    def pass_or_hold(self, raw: bytes) -> bytes:
        if self.held_block is not None:
            self.held.append(raw)
            return b""
        return raw

    def release_block(self) -> bytes:
        block, held = self.held_block, b"".join(self.held)
        self.held_block, self.held = None, []
        self.follow(None)
        self.pass_unless(b"tool_use")
        assert block is not None
        text = "".join(self.held_json)
        try:
            tool_input = orjson.loads(text) if text else block.get("input", {})
        except orjson.JSONDecodeError:
            tool_input = None
        if not isinstance(tool_input, dict):
            # Cut short or not JSON to lynkr, but a lenient client parser still reads
            # arguments from it (a partial-JSON reader, a laxer decoder): not checkable.
            return self.fail_closed("a tool call whose input is not a whole JSON object")
        name = str(block.get("name", ""))
        decision = self.middleware.check_tool_use(name, tool_input, self.allowed_calls)
        if decision.allowed:
            self.allowed_calls += 1
            return held
        self.refused_calls += 1
        logger.info("policy.tool_use_refused", tool=name, rule=decision.rule, stream=True)
        return _text_block(block["index"], self.middleware.refusal_text(name, decision))

    def fix_stop_reason(self, payload: dict[str, Any], raw: bytes, name: str) -> bytes:
        delta = payload["delta"]
        if self.refused_calls and not self.allowed_calls and delta.get("stop_reason") == "tool_use":
            payload = {**payload, "delta": {**delta, "stop_reason": "end_turn"}}
            return encode_event(name, orjson.dumps(payload))
        return raw


_BACKSLASH = 0x5C
# The most of one unfinished event held (as much as a whole JSON answer, providers/http.py):
# an upstream's endless line ends the stream with an error instead of growing memory.
_MAX_FRAME = 64 * 1024 * 1024


def _is_tool_use(block: dict[str, Any]) -> bool:
    return block.get("type") == "tool_use"


def _input_frame(index: Any) -> bytes | None:
    """How a frame of an `input_json_delta` at `index` starts, as Anthropic sends it."""
    if type(index) is not int:
        return None  # such deltas are parsed
    return delta_frame_prefix(index, "input_json_delta")


def _text_block(index: int, text: str) -> bytes:
    """A whole text block at `index`: start, one delta, stop."""
    start = {"type": "content_block_start", "index": index}
    start["content_block"] = {"type": "text", "text": ""}
    delta = {"type": "content_block_delta", "index": index}
    delta["delta"] = {"type": "text_delta", "text": text}
    stop = {"type": "content_block_stop", "index": index}
    return b"".join(
        encode_event(event["type"], orjson.dumps(event))  # type: ignore[arg-type]
        for event in (start, delta, stop)
    )
