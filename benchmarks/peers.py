"""Peers for `run.py --peers`: LiteLLM proxy, installed from PyPI into its own venv.

The venv is `benchmarks/.peers/litellm` (gitignored), made on first use with
``python -m venv`` and ``pip install 'litellm[proxy]'``; when the registry cannot be reached
the peer is skipped with the reason. LiteLLM runs with one worker, no database, a random
master key (it refuses to start without one), telemetry off and its bundled model-cost map
(no network), pointed at the same fake upstream as lynkr with an equivalent config:

* ``bench-anthropic`` → ``anthropic/up-model`` at the fake upstream (its ``/v1/messages``
  Anthropic pass-through);
* ``bench-openai`` → ``openai/up-model`` at the fake upstream's ``/v1`` (Anthropic in,
  OpenAI Chat Completions out: the translation path; needs
  ``LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES``, else LiteLLM 1.108 calls the
  Responses API).

The client posts the same body to LiteLLM's ``/v1/messages`` with ``model`` set to one of
these names (lynkr selects its pool with ``x-lynkr-pool`` instead).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers" / "litellm"
PACKAGE = "litellm[proxy]"


# LiteLLM refuses to start without a strong master key; the client sends it as its key.
MASTER_KEY = f"sk-bench-{secrets.token_hex(32)}"


@dataclass
class Started:
    process: object  # run.Process
    url: str
    version: str
    headers: dict[str, str]  # what the client adds to authenticate


def ensure_litellm() -> str | None:
    """Install LiteLLM proxy into `VENV` if needed; None when ready, else why not."""
    litellm = VENV / "bin" / "litellm"
    if litellm.exists():
        return None
    print(f"peers: installing {PACKAGE} into {VENV} (once) …", file=sys.stderr, flush=True)
    try:
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", PACKAGE],
            check=True,
            timeout=1200,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        return f"pip install {PACKAGE!r} failed (registry unreachable?): {' | '.join(tail)}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not install {PACKAGE!r}: {exc}"
    return None if litellm.exists() else f"{litellm} missing after install"


def version() -> str:
    result = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import importlib.metadata as m;"
         "print(m.version('litellm'))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip() or "?"


def litellm_config(tmp: Path, upstream: str) -> Path:
    config = {
        "model_list": [
            {
                "model_name": "bench-anthropic",
                "litellm_params": {
                    "model": "anthropic/up-model",
                    "api_base": upstream,
                    "api_key": "upstream-key",
                },
            },
            {
                "model_name": "bench-openai",
                "litellm_params": {
                    "model": "openai/up-model",
                    "api_base": f"{upstream}/v1",
                    "api_key": "upstream-key",
                },
            },
        ],
        "litellm_settings": {"drop_params": True, "set_verbose": False},
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = tmp / "litellm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_litellm(tmp: Path, upstream: str, env: dict[str, str]) -> Started | str:
    """Start LiteLLM proxy on a free port; a `Started`, or the reason it was skipped."""
    from run import Process, free_port  # the harness's process handling

    reason = ensure_litellm()
    if reason:
        return reason
    port = free_port()
    env = {
        **env,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "DISABLE_ADMIN_UI": "True",
        # Anthropic in, Chat Completions out (as lynkr's `openai` provider); without it
        # LiteLLM 1.108 sends /v1/messages for OpenAI models to the Responses API.
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
    }
    command = [
        str(VENV / "bin" / "litellm"),
        "--config", str(litellm_config(tmp, upstream)),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--num_workers", "1",
    ]  # fmt: skip
    try:
        process = Process(
            "litellm",
            command,
            f"http://127.0.0.1:{port}/health/liveliness",
            tmp / "litellm.log",
            env=env,
            timeout=120,
        )
    except RuntimeError as exc:
        return f"LiteLLM did not start: {str(exc)[-600:]}"
    auth = {"x-api-key": MASTER_KEY, "authorization": f"Bearer {MASTER_KEY}"}
    return Started(process, f"http://127.0.0.1:{port}", version(), auth)
