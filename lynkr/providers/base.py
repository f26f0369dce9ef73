"""What every provider adapter offers the agent app, in Anthropic terms.

The agent only ever speaks Anthropic: it hands an adapter a
`MessagesRequest` and gets back a `ProviderResponse` whose chunks are already
Anthropic SSE (streaming) or one Anthropic JSON message (non-streaming).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["MessagesRequest", "Provider", "ProviderResponse", "ProviderSettings"]


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """One provider as configured: the keys every type takes, and its own (`options`).

    `type` is the provider type (an adapter's flavour); `timeout` holds
    `connect`, `read` and `total` seconds, None where not given.
    """

    name: str
    type: str
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    timeout: Mapping[str, float | None] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def common(self) -> dict[str, Any]:
        """The constructor arguments every adapter takes, `timeouts` built."""
        from lynkr.providers.http import Timeouts  # the HTTP client loads with an adapter

        default = Timeouts()
        given = self.timeout
        return {
            "name": self.name,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "model": self.model,
            "timeouts": Timeouts(
                connect=float(given.get("connect") or default.connect),
                read=float(given.get("read") or default.read),
                total=given.get("total"),
            ),
            "headers": self.headers,
        }

    def chosen(self, *names: str) -> dict[str, Any]:
        """The type-specific options among `names` that the config gives."""
        return {name: self.options[name] for name in names if name in self.options}


@dataclass(slots=True)
class MessagesRequest:
    """One call to /v1/messages, as the client made it."""

    body: dict[str, Any]
    # The client's bytes, forwarded untouched when no rewrite was needed.
    raw: bytes | None = None
    betas: Sequence[str] = ()
    anthropic_version: str | None = None

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


@dataclass(slots=True)
class ProviderResponse:
    """A successful upstream answer, ready to relay: status 200 and Anthropic-format chunks."""

    stream: bool
    chunks: AsyncIterator[bytes]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class Provider(Protocol):
    name: str

    @property
    def model(self) -> str | None:
        """The model sent upstream, or None when the client's own model name is sent."""
        ...

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    def messages(self, request: MessagesRequest) -> AbstractAsyncContextManager[ProviderResponse]:
        """Send the request; raise a `LynkrError` if the upstream refuses it before answering."""
        ...

    async def count_tokens(self, request: MessagesRequest) -> int | None:
        """The upstream's own token count, or None when it has no such endpoint."""
        ...
