"""What the rest of lynkr needs of a session store: the interface, and the types it speaks.

The sessions middleware records turns through `snapshot` and `submit_turn`;
the sessions endpoint reads through `get` and `list`; the stack opens and
closes the store with the server. `SQLiteSessionStore` (`sqlite.py`) is the
embedded implementation; a store on another engine implements the same
methods with the same meaning (docstrings below) and nothing else changes.

Recording is best effort and never on the request path: `submit_turn`
returns at once, the write happens on the store's own worker, and a store
that cannot keep up skips turns (`BacklogFull`) instead of growing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from lynkr.sessions.encoding import RequestSnapshot

__all__ = ["BacklogFull", "SessionStore", "TurnRef"]


@dataclass(frozen=True, slots=True)
class TurnRef:
    """One stored turn: pass it to `record_answer`."""

    session_id: str
    turn: int
    branch: int
    added: int


class BacklogFull(RuntimeError):
    """A turn was not recorded: too many session writes were already waiting."""


class SessionStore(Protocol):
    """Sessions' turns, answers and usage, kept across requests and restarts."""

    async def open(self) -> None:
        """Connect and create what is missing, so a bad location fails at startup."""

    async def close(self) -> None:
        """Write every turn already submitted (nothing submitted is lost), then close."""

    def snapshot(self, body: Mapping[str, Any]) -> RequestSnapshot:
        """What `submit_turn` needs of a request, taken when it arrives; the caller may
        change `body` next."""

    def submit_turn(
        self,
        session_id: str,
        request: RequestSnapshot,
        answer: Callable[[], Any] | None = None,
    ) -> Future[None]:
        """Queue a whole turn: the request, then its answer; returns at once.

        `answer` runs on the store's worker after the request is stored and returns
        a message (or its content) to keep, or None when there is nothing to keep.
        The future fails with `BacklogFull` when the turn was skipped.
        """

    async def get(self, session_id: str, *, full: bool = False) -> dict[str, Any] | None:
        """A session's turns (new messages summarised, answer, usage) and totals; None if
        unknown. `full` adds each message's whole content."""

    async def list(self, limit: int = 50, *, owner: str | None = None) -> list[dict[str, Any]]:
        """The `limit` most recently updated sessions of `owner` (a caller's name; None:
        the sessions of requests without one), newest first, with their totals."""
