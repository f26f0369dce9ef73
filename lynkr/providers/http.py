"""The upstream HTTP client: one connection pool per provider, behind a one-method interface.

Adapters only call `UpstreamClient.stream(...)`, an async context manager that
yields an `UpstreamResponse`; the transport behind it is replaceable. Today it
is aiohttp, measured on this machine at ~0.4 ms CPU per proxied request
against ~2 ms for a stock `httpx.AsyncClient`, whose cost also grows with
concurrency (benchmarks/README.md, "Upstream client"; encode/httpx#3215).

Safety rules for a client that carries provider keys: no redirects are
followed, proxy variables and .netrc are ignored (`trust_env=False`), and URLs
come only from config.

Foreign exceptions are translated here, at the boundary, into lynkr's tree:
connection failures → `UpstreamConnectError`, timeouts → `UpstreamTimeout`,
a connection lost mid-body → `UpstreamError`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lynkr.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Timeouts", "UpstreamClient", "UpstreamResponse", "forwarded_headers", "redact_url"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: `connect` to open a connection, `read` between bytes, `total` per call (or None)."""

    connect: float = 10.0
    read: float = 600.0
    total: float | None = None


class UpstreamResponse:
    """An upstream response whose body has not been read yet."""

    def __init__(self, response: aiohttp.ClientResponse, describe: str, timeouts: Timeouts) -> None:
        self._response = response
        self._describe = describe
        self._timeouts = timeouts
        self.status: int = response.status
        self.headers: Mapping[str, str] = response.headers

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive, without waiting to fill any buffer."""
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(
                f"{self._describe} stopped sending for more than {self._timeouts.read:g} s "
                "in the middle of its answer (raise timeout.read for slow models)"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"{self._describe} closed the connection in the middle of its answer "
                f"({type(exc).__name__})"
            ) from exc

    async def read(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """The whole body (for JSON answers and error bodies), at most `limit` bytes."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.iter_chunks():
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"{self._describe} sent a body larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


class UpstreamClient:
    """A shared connection pool to one provider; open it once, use it from many requests."""

    def __init__(self, *, name: str, timeouts: Timeouts, max_connections: int = 100) -> None:
        self.name = name
        self.timeouts = timeouts
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is not None:
            return
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.timeouts.total,
                connect=self.timeouts.connect,
                sock_read=self.timeouts.read,
            ),
            trust_env=False,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes
    ) -> AsyncIterator[UpstreamResponse]:
        """Send a request; yield the response once its headers arrived; always release it."""
        if self._session is None:
            await self.open()
        assert self._session is not None
        describe = f"provider '{self.name}' at {redact_url(url)}"
        import aiohttp

        try:
            response = await self._session.request(
                method, url, headers=dict(headers), data=content, allow_redirects=False
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(
                f"{describe} did not answer within {self._timeout_hint()} "
                f"(providers.{self.name}.timeout)"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(
                f"could not connect to {describe}: {_reason(exc)}. Is the server running "
                f"and is providers.{self.name}.base_url right?"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(
                f"request to {describe} failed before any answer ({type(exc).__name__})"
            ) from exc
        try:
            yield UpstreamResponse(response, describe, self.timeouts)
        finally:
            # A body read to the end lets the connection go back to the pool;
            # one abandoned midway (client gone, error) must not be reused.
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    def _timeout_hint(self) -> str:
        t = self.timeouts
        parts = [f"{t.connect:g} s to connect", f"{t.read:g} s to answer"]
        if t.total is not None:
            parts.append(f"{t.total:g} s in total")
        return ", ".join(parts)


def forwarded_headers(
    response: UpstreamResponse, names: tuple[str, ...], prefixes: tuple[str, ...] = ()
) -> list[tuple[bytes, bytes]]:
    """The upstream response headers worth passing to the client: an allowlist, never a denylist."""
    kept = []
    for name, value in response.headers.items():
        lower = name.lower()
        if lower in names or lower.startswith(prefixes):
            kept.append((lower.encode("latin-1"), value.encode("latin-1")))
    return kept


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    os_error: Any = getattr(exc, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, asyncio.TimeoutError):
        return "timed out"
    text = getattr(os_error, "strerror", None) or str(os_error or exc)
    return str(text)


@functools.lru_cache(maxsize=256)  # per call, over a handful of configured URLs
def redact_url(url: str) -> str:
    """The URL without credentials: no `user:password@`, no query string (keys hide there)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
