"""The policy middleware alone in a Starlette app.

Run: `uvicorn examples.policy_starlette:app` (or `python examples/policy_starlette.py`).
The strict policy (policies/strict.yaml) is loaded once, with errors located
like `lynkr validate`, and handed to the middleware already loaded:

- requests: a model outside `request.allow_models` or too many tools get a
  `403 permission_error` naming the rule; the web tools are stripped and
  `max_tokens` is clamped before the handler sees the body (logged on the
  `lynkr.policy` logger);
- responses (`enforce_on_responses`): the handler plays a model that answers
  with a `Bash` tool call; a denied call reaches the client as a text block
  naming the rule, and the turn ends (`stop_reason: end_turn`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lynkr.asgi import get_context
from lynkr.config.policy import load_policy_data
from lynkr.middleware.policy import PolicyMiddleware

STRICT = load_policy_data(Path(__file__).resolve().parent.parent / "policies" / "strict.yaml")


async def messages(request: Request) -> JSONResponse:
    """A stand-in model: runs whatever command the request's last message asks for."""
    body = get_context(request.scope).body or await request.json()
    command = body["messages"][-1]["content"]
    return JSONResponse(
        {
            "id": "msg_example",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [
                {"type": "text", "text": f"max_tokens {body['max_tokens']}; running it."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "Bash",
                    "input": {"command": command},
                },
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1},
            "tools_seen": [tool["name"] for tool in body.get("tools", [])],
        }
    )


app = Starlette(
    routes=[Route("/v1/messages", messages, methods=["POST"])],
    middleware=[Middleware(PolicyMiddleware, policy=STRICT, enforce_on_responses=True)],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
