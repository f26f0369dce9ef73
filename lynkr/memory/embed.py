"""Embeddings: a local model that works offline, or a provider's embeddings endpoint.

Both give L2-normalised float32 vectors (`Embedder.embed` → one `bytes` per
text, ready for sqlite-vec), named by `model` so vectors of two models are
never mixed (the store re-embeds when the model changes).

* `WordLlamaEmbedder` — wordllama's 256-dimension model, shipped inside its
  wheel: loaded from the package's own directory with downloads disabled, so
  it never reaches a model hub; ~0.02 ms per query on one core.
* `EndpointEmbedder` — `POST /v1/embeddings` (OpenAI-compatible) or
  `POST /api/embed` (Ollama). A failing endpoint raises `EmbeddingError`; the
  memory service then works keyword-only for that call and logs why.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["Embedder", "EmbeddingError", "EndpointEmbedder", "WordLlamaEmbedder", "build_embedder"]


class EmbeddingError(Exception):
    """The embedder could not embed (endpoint down, bad answer, model missing)."""


class Embedder(Protocol):
    model: str
    dimensions: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def embed(self, texts: Sequence[str]) -> list[bytes]: ...


def _normalised(rows: Any) -> list[bytes]:
    import numpy as np

    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim != 2:
        raise EmbeddingError(f"expected one vector per text, got an array of shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return [row.tobytes() for row in matrix / norms]


class WordLlamaEmbedder:
    """wordllama's bundled model (`l2_supercat`, 256 dimensions), offline."""

    def __init__(self, *, config: str = "l2_supercat", dimensions: int = 256) -> None:
        self.config = config
        self.dimensions = dimensions
        self.model = f"wordllama/{config}/{dimensions}"
        self._model: Any = None
        self._lock = threading.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    async def close(self) -> None:
        self._model = None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from pathlib import Path

                    import wordllama  # type: ignore[import-untyped]

                    package = Path(wordllama.__file__).parent
                    self._model = wordllama.WordLlama.load(
                        config=self.config,
                        cache_dir=package,
                        dim=self.dimensions,
                        disable_download=True,
                    )
                except Exception as exc:  # the wheel is missing or broken
                    raise EmbeddingError(f"wordllama's bundled model does not load: {exc}") from exc
            return self._model

    def embed_now(self, texts: Sequence[str]) -> list[bytes]:
        """On the calling thread: a short query costs ~20 µs, less than a thread hand-off."""
        return _normalised(self._load().embed(list(texts)))

    async def embed(self, texts: Sequence[str]) -> list[bytes]:
        if len(texts) <= 2 and self._model is not None:
            return self.embed_now(texts)
        return await asyncio.to_thread(self.embed_now, texts)


class EndpointEmbedder:
    """An embeddings endpoint: `openai` (`/v1/embeddings`) or `ollama` (`/api/embed`)."""

    def __init__(
        self,
        *,
        kind: str,
        base_url: str,
        model: str,
        dimensions: int,
        api_key: str | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if kind not in ("openai", "ollama"):
            raise ValueError(f"embeddings type must be openai or ollama, not {kind!r}")
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.dimensions = dimensions
        self.model = f"{kind}/{model}/{dimensions}"
        self._name = model
        self._api_key = api_key
        self._timeout = timeout
        self._headers = dict(headers or {})
        self._session: Any = None

    @property
    def url(self) -> str:
        if self.kind == "ollama":
            return self.base_url + "/api/embed"
        return self.base_url + (
            "/embeddings" if self.base_url.endswith("/v1") else "/v1/embeddings"
        )

    async def start(self) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def embed(self, texts: Sequence[str]) -> list[bytes]:
        import aiohttp

        if self._session is None:
            await self.start()
        headers = {"content-type": "application/json", **self._headers}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        payload: dict[str, Any] = {"model": self._name, "input": list(texts)}
        try:
            async with self._session.post(self.url, json=payload, headers=headers) as response:
                if response.status != 200:
                    raise EmbeddingError(f"{self.url} answered HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise EmbeddingError(f"{self.url} failed: {type(exc).__name__}") from exc
        vectors = _vectors(data, self.kind)
        if len(vectors) != len(texts) or any(len(v) != self.dimensions for v in vectors):
            raise EmbeddingError(
                f"{self.url} returned {len(vectors)} vectors for {len(texts)} texts, or vectors"
                f" that are not {self.dimensions}-dimensional (set memory.embeddings.dimensions)"
            )
        return _normalised(vectors)


def _vectors(data: Any, kind: str) -> list[list[float]]:
    try:
        if kind == "ollama":
            return list(data["embeddings"])
        return [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]
    except (KeyError, TypeError) as exc:
        raise EmbeddingError(f"the embeddings answer has no vectors ({exc!r})") from exc


def build_embedder(settings: Mapping[str, Any]) -> Embedder | None:
    """The embedder `memory.embeddings` describes; None for `type: none`."""
    kind = settings.get("type", "local")
    if kind == "none":
        return None
    if kind == "local":
        return WordLlamaEmbedder(dimensions=int(settings.get("dimensions") or 256))
    return EndpointEmbedder(
        kind=kind,
        base_url=str(settings["base_url"]),
        model=str(settings["model"]),
        dimensions=int(settings["dimensions"]),
        api_key=settings.get("api_key"),
        timeout=float(settings.get("timeout_seconds", 10)),
    )
