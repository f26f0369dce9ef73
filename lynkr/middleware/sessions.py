"""Sessions: each Messages turn recorded as the client received it, off the request path.

For every `POST …/v1/messages` the request is snapshotted when it arrives
(before any inner layer rewrites its body) and the answer's bytes are kept
as they go out; when the answer is done, the turn is handed to the
`SessionStore` in one job, assembled and written on the store's worker. The
client never waits for it.

The layer records what left it: a cache hit, a tool call the policy
replaced by a refusal, a stream the policy stopped. So where it sits decides
what a session holds; lynkr's stack puts it after the layers that admit and
parse a request (shedding, auth, openai_compat, validation) and before those
that answer it (cache, policy, routing, failover).

Each caller's turns go to its own sessions (`owned_id`: the auth key's name
and the session id), so two keys never share, or read, one conversation.

An error, or an answer the client did not get whole (it left, the stream
broke), leaves the turn's request without an answer. Other paths and scope
types pass straight through.
"""

from __future__ import annotations

from functools import partial

import structlog

from lynkr.asgi import (
    AnswerCopy,
    ASGIApp,
    Receive,
    Scope,
    Send,
    api_path,
    body_or_answer,
    get_context,
    replay_receive,
)
from lynkr.protocol.accumulate import assemble_answer
from lynkr.sessions import RequestSnapshot, SessionStore, derive_session_id, owned_id

__all__ = ["SessionsMiddleware"]

_MESSAGES_PATH = "/v1/messages"
_log = structlog.get_logger("lynkr.sessions")


class SessionsMiddleware:
    """Records each Messages turn, request and answer, in a `SessionStore`.

    The store is shared state on purpose (every route of a server records into
    one); opening and closing it is its owner's job (`lynkr serve`'s lifespan).
    """

    def __init__(
        self, app: ASGIApp, *, store: SessionStore, max_answer_bytes: int = 16 * 1024 * 1024
    ) -> None:
        if max_answer_bytes < 1:
            raise ValueError("max_answer_bytes must be at least 1 (e.g. 16777216)")
        self.app = app
        self.store = store
        self.max_answer_bytes = max_answer_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or api_path(scope["path"].rstrip("/")) != _MESSAGES_PATH
        ):
            await self.app(scope, receive, send)
            return
        body = await body_or_answer(scope, receive, send)
        if body is None:
            return
        context = get_context(scope)
        context.session_id = context.session_id or derive_session_id(scope["headers"], body)
        stored_as = owned_id(context.caller, context.session_id)
        recorder = _AnswerRecorder(stored_as, self.store.snapshot(body), self.max_answer_bytes)
        try:
            await self.app(scope, replay_receive(scope, receive), recorder.wrap(send))
        finally:
            self._submit(recorder)

    def _submit(self, recorder: _AnswerRecorder) -> None:
        """Queue the turn; its answer is assembled on the store's writer, not here."""
        answer = None
        if recorder.too_large:
            _log.warning(
                "session_answer_not_recorded",
                session=recorder.session_id,
                reason=f"answer over sessions.max_answer_bytes ({self.max_answer_bytes} bytes)",
            )
        elif recorder.status == 200 and recorder.complete:
            answer = partial(assemble_answer, recorder.body, recorder.content_type)
        try:
            self.store.submit_turn(recorder.session_id, recorder.request, answer)
        except RuntimeError as exc:  # the store closed (the server is stopping): best effort
            _log.debug("session_turn_dropped", session=recorder.session_id, error=repr(exc))


class _AnswerRecorder(AnswerCopy):
    """The answer's copy, and the turn it answers."""

    __slots__ = ("request", "session_id")

    def __init__(self, session_id: str, request: RequestSnapshot, limit: int) -> None:
        super().__init__(limit)
        self.session_id = session_id
        self.request = request
