"""Sessions: every conversation's turns and token usage, kept off the request path.

* `identity` — which session a request belongs to (`derive_session_id`, pure);
* `encoding` — messages encoded without `cache_control`, hashed, snapshotted (pure);
* `store` — the `SessionStore` interface the middleware and the endpoint use;
* `sqlite` — `SQLiteSessionStore`, the embedded implementation (with `tables`
  and `views`, its statements);
* `endpoint` — `GET /v1/lynkr/sessions[/{id}]`.

The layer that records what the client received is
`lynkr.middleware.sessions.SessionsMiddleware`.
"""

from lynkr.sessions.encoding import (
    USAGE_FIELDS,
    RequestSnapshot,
    canonical_message,
    encode_message,
    encode_messages,
)
from lynkr.sessions.endpoint import SessionsEndpoint
from lynkr.sessions.identity import derive_session_id, owned_id, split_owned
from lynkr.sessions.sqlite import SQLiteSessionStore
from lynkr.sessions.store import BacklogFull, SessionStore, TurnRef

__all__ = [
    "USAGE_FIELDS",
    "BacklogFull",
    "RequestSnapshot",
    "SQLiteSessionStore",
    "SessionStore",
    "SessionsEndpoint",
    "TurnRef",
    "canonical_message",
    "derive_session_id",
    "encode_message",
    "encode_messages",
    "owned_id",
    "split_owned",
]
