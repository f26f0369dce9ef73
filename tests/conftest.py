"""Shared fixtures: the fake Anthropic upstream and a real `lynkr serve` subprocess.

Fixtures
--------
``fake``
    The session's `FakeAnthropic` (tests/fakes/anthropic_upstream.py), reset for the test:
    no queued scenarios, no recorded requests, default text answer. Script it with
    ``fake.script(tool_use(...), text(...))``; inspect ``fake.message_requests()``.
``lynkr_url``
    Base URL of a `lynkr serve` started once per session with `lynkr_config()`'s default
    config: provider ``fake`` (type anthropic, key ``upstream-secret-key``, model
    ``fake-model-1``) pointed at the fake upstream, in pool ``main``. Depends on ``fake``,
    so the fake is clean for every test.
``lynkr_server``
    A factory: ``lynkr_server("foundry", providers={...}, default_pool=...)`` starts (once
    per session and name) a lynkr with a config built by `lynkr_config(fake_url, ...)` and
    returns its `LynkrServer` (``.url``, ``.config_path``, ``.stderr_text()``).
``lynkr_config``
    The config writer function itself, for tests that want the dict or the file.
``closed_port``
    A loopback port nobody listens on (for connection-refused tests).

Async tests
-----------
Write ``@pytest.mark.anyio`` over an ``async def test_...`` (or ``pytestmark =
pytest.mark.anyio`` for a whole module): anyio's pytest plugin runs it on a fresh asyncio
loop (``anyio_backend`` below; lynkr is asyncio-only, aiohttp ties it to asyncio), and
every such test is bounded by ``ASYNC_TEST_TIMEOUT`` so a bug fails it instead of hanging
the suite. No per-file ``asyncio.run`` wrappers. Two kinds of test stay synchronous and call
``asyncio.run`` themselves: hypothesis tests (under anyio, a failing example of
tests/middleware/test_validation_fuzz.py crashed pytest's report with an INTERNALERROR,
"AST constructor recursion depth mismatch", instead of showing the example), and e2e tests
that block between their async steps (starting a lynkr, waiting on the fake upstream).

Everything listens on 127.0.0.1 with free ports. The lynkr subprocesses are stopped
together when the session ends, each by its own pid (SIGTERM, then SIGKILL after 5 s;
a lynkr that needs the SIGKILL fails the session: its shutdown hangs).

Every test is also watched for threads it leaves running (``no_thread_left_running``).
When the run measures coverage (``--cov``, as scripts/test does for the whole suite), each
`lynkr serve` runs under ``coverage run`` and its data joins the run's (``python_measured``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from client_bytes import RecordingRelay
from fakes.anthropic_upstream import FakeAnthropic

REPO = Path(__file__).resolve().parent.parent
UPSTREAM_KEY = "upstream-secret-key"
PROVIDER_MODEL = "fake-model-1"
STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_providers(fake_url: str) -> dict[str, dict[str, Any]]:
    """The three Anthropic-dialect providers, all pointed at the fake upstream."""
    return {
        "fake": {
            "type": "anthropic",
            "base_url": fake_url,
            "api_key": UPSTREAM_KEY,
            "model": PROVIDER_MODEL,
        },
        "foundry": {
            "type": "azure-anthropic",
            "base_url": f"{fake_url}/anthropic",
            "api_key": "k2",
            "model": "my-deployment",
        },
        "dbx": {
            "type": "databricks",
            "base_url": fake_url,
            "api_key": "dapi-k3",
            "endpoint": "databricks-claude-sonnet-4-5",
        },
    }


def lynkr_config(
    fake_url: str,
    data_dir: Path | str,
    *,
    providers: Mapping[str, Mapping[str, Any]] | None = None,
    pools: Mapping[str, Any] | None = None,
    default_pool: str = "main",
    middleware: list[dict[str, Any]] | None = None,
    path: Path | str | None = None,
    port: int = 8080,
    extra: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build (and with `path`, write) a lynkr.yaml whose providers point at `fake_url`.

    `providers` replaces the default three (see `default_providers`); `pools` defaults to
    ``{"main": {"providers": ["fake"]}}``; `server` is merged into the `server:` section;
    `extra` is merged at the top level last.
    """
    config: dict[str, Any] = {
        "version": 1,
        "server": {"host": "127.0.0.1", "port": port, "data_dir": str(data_dir), **(server or {})},
        "providers": dict(providers) if providers is not None else default_providers(fake_url),
        "pools": dict(pools) if pools is not None else {"main": {"providers": ["fake"]}},
        "routing": {"default_pool": default_pool},
        "routes": [
            {
                "path": "/v1/messages",
                "middleware": middleware
                if middleware is not None
                else [{"use": "validation"}, {"use": "routing"}],
                "app": "agent",
            }
        ],
    }
    config.update(extra or {})
    if path is not None:
        Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def lynkr_serve_available() -> bool:
    """Whether lynkr/cli.py exists and mentions a `serve` command."""
    cli = REPO / "lynkr" / "cli.py"
    return cli.is_file() and "serve" in cli.read_text(errors="replace")


def python_measured() -> list[str]:
    """``python -m``, under `coverage run` when this test run measures coverage.

    So the lynkr code only a served lynkr runs (``serve``, the lifespan, the ASGI server's
    wiring) counts too. Its data file joins the others (``parallel``, pyproject.toml) and is
    saved on SIGTERM (``sigterm``), how `LynkrServer.stop` ends it.
    """
    coverage = sys.modules.get("coverage")
    if coverage is None or coverage.Coverage.current() is None:
        return [sys.executable, "-m"]
    return [sys.executable, "-m", "coverage", "run", f"--rcfile={REPO / 'pyproject.toml'}", "-m"]


class LynkrServer:
    """`python -m lynkr serve` as a subprocess on a free loopback port."""

    def __init__(self, config_path: Path, log_dir: Path) -> None:
        self.config_path = config_path
        self.log_dir = log_dir
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._terminated = False
        self._stdout_path = log_dir / "stdout.log"
        self._stderr_path = log_dir / "stderr.log"
        self.client_bytes_path = log_dir / "client-bytes.bin"
        self.relay: RecordingRelay | None = None

    def stderr_text(self, limit: int = 6000) -> str:
        text = ""
        for path in (self._stdout_path, self._stderr_path):
            with contextlib.suppress(OSError):
                text += f"--- {path.name} ---\n" + path.read_text(errors="replace")[-limit:]
        return text

    def start(self, attempts: int = 3) -> LynkrServer:
        if not lynkr_serve_available():
            pytest.fail(
                "lynkr serve is not available yet (no lynkr/cli.py with a `serve` command); "
                "e2e tests need the real server",
                pytrace=False,
            )
        for attempt in range(attempts):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            if self._start_once():
                # Clients go through the recording relay: what lynkr sends them is scanned.
                self.relay = RecordingRelay(self.port, self.client_bytes_path).start()
                self.url = f"http://127.0.0.1:{self.relay.port}"
                return self
            if (
                "address already in use" not in self.stderr_text().lower()
                or attempt == attempts - 1
            ):
                break
        pytest.fail(
            f"lynkr serve did not answer GET /health with 200 within {STARTUP_TIMEOUT:.0f} s "
            f"(config {self.config_path}):\n{self.stderr_text()}",
            pytrace=False,
        )

    def _start_once(self) -> bool:
        env = {
            k: v
            for k, v in os.environ.items()
            if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
        }
        env.update(
            PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost"
        )
        command = [
            *python_measured(), "lynkr", "serve",
            "--config", str(self.config_path),
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._reap()
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return True
                time.sleep(0.1)
        self.stop()
        return False

    def _reap(self) -> None:
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting; `stop` waits."""
        if self.process is not None and not self._terminated and self.process.poll() is None:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)

    def stop(self) -> bool:
        """SIGTERM (unless `terminate` sent it), wait 5 s, then SIGKILL; False if it took that."""
        self.terminate()
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        process, self.process = self.process, None
        self._terminated = False
        if process is None:
            return True
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
            return False
        return True


def leaked_secrets(server: LynkrServer) -> list[str]:
    """The forms of the server's configured secrets (provider and client keys) in its whole
    log or in any byte it sent a client (`client_bytes.py`): every `lynkr serve` of the
    suite is checked when it stops."""
    from lynkr.cli import _log_secrets
    from lynkr.config import load_config
    from lynkr.errors import ConfigError
    from lynkr.providers.errors import secret_forms

    try:
        config = load_config(server.config_path, allow_missing_env=True)
    except ConfigError:
        return []  # a config the test meant to be refused: lynkr never served it
    forms = secret_forms(tuple(s for s in _log_secrets(config) if "${" not in s))
    log = server.stderr_text(limit=10**9).encode()
    with contextlib.suppress(OSError):
        log += server.client_bytes_path.read_bytes()
    return [form.decode("latin-1")[:12] + "…" for form in forms if form in log]


def stop_all(servers: Iterable[LynkrServer]) -> list[LynkrServer]:
    """Stop `servers` together (SIGTERM to all, then wait); the ones that needed SIGKILL.

    One at a time, each costs its shutdown (~0.2 s: uvicorn's 0.1 s tick, the lifespan,
    the interpreter's exit): the 40-odd servers of a full run took 7 s that way.
    """
    servers = list(servers)
    for server in servers:
        server.terminate()
    return [server for server in servers if not server.stop()]


# --------------------------------------------------------------------------- async tests

# The bound of each @pytest.mark.anyio test: far above any test's own time, there only so
# that a hang fails the test (with a TimeoutError where it hung) instead of the whole run.
ASYNC_TEST_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio only (not trio)."""
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every @pytest.mark.anyio coroutine test by `ASYNC_TEST_TIMEOUT`."""
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker("anyio") is None:
            continue
        if inspect.iscoroutinefunction(item.obj):
            item.obj = _bounded(item.obj)


def _bounded(test: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(test)
    async def bounded(**kwargs: Any) -> Any:
        async with asyncio.timeout(ASYNC_TEST_TIMEOUT):
            return await test(**kwargs)

    return bounded


# --------------------------------------------------------------------------- fixtures

# How long a thread a test started may take to finish after the test before it counts as left
# running: enough for a thread told to stop that is on its way out, far less than a thread
# nobody told (an unclosed Database's worker waits for jobs until its object is collected).
THREAD_GRACE = 1.0


def _watched(thread: threading.Thread) -> bool:
    """lynkr's own threads (lynkr-sqlite_0, lynkr-cache_0...) and every non-daemon one."""
    return thread.name.startswith("lynkr") or not thread.daemon


@pytest.fixture(autouse=True)
def no_thread_left_running() -> Iterator[None]:
    """Fail the test that leaves a lynkr thread (or any non-daemon thread) running.

    Such a thread outlives the store or server it served and keeps the file, the
    port or the interpreter's exit (non-daemon) for whatever test runs next. Cheap:
    two `threading.enumerate()` calls, and joins only when a thread was left.
    """
    before = set(threading.enumerate())
    yield
    started = [t for t in threading.enumerate() if t not in before and _watched(t)]
    if not started:
        return
    deadline = time.monotonic() + THREAD_GRACE
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = sorted(thread.name for thread in started if thread.is_alive())
    if alive:
        pytest.fail(
            f"the test left {len(alive)} thread(s) running {THREAD_GRACE:.0f} s after it ended: "
            f"{alive} (close the Database, store or server it started)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeAnthropic]:
    """The session's fake Anthropic upstream (not reset: prefer `fake`)."""
    with FakeAnthropic() as upstream:
        yield upstream


@pytest.fixture
def fake(fake_upstream: FakeAnthropic) -> FakeAnthropic:
    """The fake upstream, reset for this test."""
    fake_upstream.reset()
    return fake_upstream


@pytest.fixture(scope="session")
def lynkr_server(
    fake_upstream: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LynkrServer]]:
    """Factory: a lynkr per `name`, started on first use and kept for the session.

    ``lynkr_server(name, **config_options)`` — the options go to `lynkr_config`; the same
    name always returns the first server started under it.
    """
    servers: dict[str, LynkrServer] = {}
    failures: dict[str, str] = {}

    def start(name: str = "default", **options: Any) -> LynkrServer:
        if name in failures:  # fail fast: do not wait 20 s again for every test
            pytest.fail(failures[name], pytrace=False)
        if name in servers:
            return servers[name]
        root = tmp_path_factory.mktemp(f"lynkr-{name}")
        config_path = root / "lynkr.yaml"
        lynkr_config(fake_upstream.url, root / "data", path=config_path, **options)
        server = LynkrServer(config_path, root)
        servers[name] = server
        try:
            return server.start()
        except pytest.fail.Exception as exc:
            failures[name] = f"(lynkr {name!r} failed to start earlier) {exc.msg}"
            raise

    yield start
    killed = stop_all(servers.values())
    if killed:  # a lynkr whose graceful shutdown hangs: a bug, not something to wait out
        logs = "\n".join(server.stderr_text(limit=2000) for server in killed)
        names = [name for name, server in servers.items() if server in killed]
        pytest.fail(f"lynkr {names} did not exit within 5 s of SIGTERM:\n{logs}", pytrace=False)
    leaks = {name: found for name, server in servers.items() if (found := leaked_secrets(server))}
    if leaks:  # suite-wide: no `lynkr serve` of any test may log a configured secret
        pytest.fail(f"lynkr logged a configured secret (server: forms): {leaks}", pytrace=False)


@pytest.fixture
def lynkr(fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]) -> LynkrServer:
    """The default lynkr (provider `fake` → the fake upstream); the fake is reset."""
    return lynkr_server("default")


@pytest.fixture
def lynkr_url(lynkr: LynkrServer) -> str:
    return lynkr.url


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener (connection refused)."""
    return free_port()


@pytest.fixture(name="lynkr_config")
def lynkr_config_fixture() -> Callable[..., dict[str, Any]]:
    return lynkr_config


# --------------------------------------------------------------------------- translated upstreams
#
# ``openai_fake`` / ``ollama_fake``: the session's `FakeOpenAI` (tests/fakes/openai_upstream.py)
# and `FakeOllama` (tests/fakes/ollama_upstream.py), reset for the test like ``fake``. Point a
# provider at them with ``base_url: f"{openai_fake.url}/v1"`` (or the dialect's own shape:
# ``/api/v1`` for OpenRouter, the bare URL for Azure, Databricks, llama.cpp and Ollama) and
# pass that provider to ``lynkr_server(name, providers=..., pools=...)``.


@pytest.fixture(scope="session")
def openai_upstream() -> Iterator[Any]:
    """The session's fake OpenAI-compatible upstream (not reset: prefer `openai_fake`)."""
    from fakes.openai_upstream import FakeOpenAI

    with FakeOpenAI() as upstream:
        yield upstream


@pytest.fixture
def openai_fake(openai_upstream: Any) -> Any:
    """The fake OpenAI upstream, reset for this test."""
    openai_upstream.reset()
    return openai_upstream


@pytest.fixture(scope="session")
def ollama_upstream() -> Iterator[Any]:
    """The session's fake Ollama (not reset: prefer `ollama_fake`)."""
    from fakes.ollama_upstream import FakeOllama

    with FakeOllama() as upstream:
        yield upstream


@pytest.fixture
def ollama_fake(ollama_upstream: Any) -> Any:
    """The fake Ollama, reset for this test."""
    ollama_upstream.reset()
    return ollama_upstream
