"""Socket Mode for `shepherd serve --socket-mode`: Bolt's handler on slack_sdk's aiohttp client, made
safe against redelivery.

Slack sends an envelope again (with `retry_attempt`) when its acknowledgement did not arrive in time:
the connection dropped, or was being refreshed, after the app had read it. Bolt would run it again, so a
slash command would plan or request twice. `SocketModeHandler` remembers each delivery by what Slack
keeps the same across attempts (the `trigger_id` of a command or interaction, the `event_id` of an
event; else the envelope id) for `remember_s`: a redelivery is answered with the first delivery's own
acknowledgement (waiting for it if it is still running) and runs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

log = logging.getLogger(__name__)

REMEMBER_S = 600.0  # Slack retries within minutes
REMEMBERED = 20_000
ANSWER_WAIT_S = 2.5  # a redelivery of a delivery still running waits this long for its answer


def delivery_key(req: SocketModeRequest) -> str:
    payload: dict[str, Any] = req.payload or {}
    same = payload.get("event_id") or payload.get("trigger_id")
    return f"{req.type}:{same}" if same else f"envelope:{req.envelope_id}"


class Deliveries:
    """The answers given to recent deliveries, by `delivery_key`, for `remember_s` (at most `size` of them)."""

    def __init__(self, remember_s: float = REMEMBER_S, size: int = REMEMBERED) -> None:
        self.remember_s, self.size = remember_s, size
        self._answers: OrderedDict[str, tuple[float, asyncio.Future[BoltResponse]]] = OrderedDict()
        self.repeats = 0  # redeliveries answered without running them

    def claim(self, key: str) -> tuple[bool, asyncio.Future[BoltResponse]]:
        """(True, a future to fill with the answer) for a new delivery; (False, its first answer) for a repeat."""
        now = time.monotonic()
        while self._answers and (len(self._answers) >= self.size or
                                 now - next(iter(self._answers.values()))[0] > self.remember_s):
            self._answers.popitem(last=False)
        found = self._answers.get(key)
        if found is not None:
            self.repeats += 1
            return False, found[1]
        answer: asyncio.Future[BoltResponse] = asyncio.get_running_loop().create_future()
        self._answers[key] = (now, answer)
        return True, answer

    def forget(self, key: str) -> None:
        self._answers.pop(key, None)


class SocketModeHandler(AsyncSocketModeHandler):
    def __init__(self, app: AsyncApp, app_token: str, *, ping_interval: float = 10.0,
                 remember_s: float = REMEMBER_S) -> None:
        super().__init__(app, app_token, ping_interval=ping_interval)
        self.deliveries = Deliveries(remember_s)

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        began = time.time()
        key = delivery_key(req)
        first, answer = self.deliveries.claim(key)
        if not first:
            log.info("Socket Mode redelivery %s (attempt %s, %s): answered with the first delivery's ack",
                     key, req.retry_attempt, req.retry_reason)
            try:
                response = await asyncio.wait_for(asyncio.shield(answer), ANSWER_WAIT_S)
            except asyncio.CancelledError:
                if not answer.cancelled():
                    raise
                response = BoltResponse(status=200, body="")
            except Exception:  # still running, or it failed: an empty ack, and nothing runs twice
                response = BoltResponse(status=200, body="")
            await send_async_response(client, req, response, began)
            return
        try:
            response = await run_async_bolt_app(self.app, req)
        except BaseException:
            self.deliveries.forget(key)  # it did not run: a redelivery may run it
            answer.cancel()
            raise
        answer.set_result(response)
        await send_async_response(client, req, response, began)
