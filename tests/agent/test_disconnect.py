"""`_cancel_on_disconnect` (lynkr/agent/app.py): only lynkr's own cancellation is swallowed."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from lynkr.agent.app import _cancel_on_disconnect

pytestmark = pytest.mark.anyio


class Client:
    """A `receive` that answers `http.disconnect` once `leave()` was called."""

    def __init__(self) -> None:
        self.left = asyncio.Event()

    def leave(self) -> None:
        self.left.set()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}


async def test_a_disconnect_cancels_the_work_and_returns_normally() -> None:
    client = Client()
    reached = False

    async def work() -> None:
        nonlocal reached
        client.leave()
        await asyncio.sleep(10)  # the upstream call, cut short
        reached = True

    await _cancel_on_disconnect(client.receive, work)  # returns: does not raise
    task = asyncio.current_task()
    assert task is not None
    await asyncio.sleep(0)  # no stray cancellation is left pending
    assert (reached, task.cancelling()) == (False, 0)


async def test_a_server_cancel_propagates_even_when_the_client_left_too() -> None:
    client = Client()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(10)

    handler = asyncio.ensure_future(_cancel_on_disconnect(client.receive, work))
    await started.wait()
    handler.cancel()  # the server gives up on the request (a shutdown)
    client.leave()  # and the connection closes at the same time
    with pytest.raises(asyncio.CancelledError):
        await handler


async def test_work_that_swallows_the_cancel_leaves_no_cancel_behind() -> None:
    client = Client()

    async def work() -> None:
        client.leave()
        with contextlib.suppress(asyncio.CancelledError):  # a cleanup path that ends quietly
            await asyncio.sleep(10)

    await _cancel_on_disconnect(client.receive, work)  # returns: does not raise
    await asyncio.sleep(0.01)  # would raise if a cancel were still pending
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_finished_work_is_not_cancelled_by_a_later_disconnect() -> None:
    client = Client()

    async def work() -> None:
        await asyncio.sleep(0)

    await _cancel_on_disconnect(client.receive, work)
    client.leave()
    await asyncio.sleep(0.01)  # would raise if the watcher were still listening
