"""Replayed signed requests run once.

Slack's request signature (HMAC of `v0:{timestamp}:{body}`) has no nonce: anyone who saw a request
can send it again within the 5 minutes Bolt accepts its timestamp, and the command would run again.
`ReplayGuard` records each signed request's (signature, timestamp) in `shepherd.slack_requests`
under a unique key before the listeners see it; a request whose key is already there is answered
200 with an empty body (an ack: Slack and a replayer see success) and not run. The table is shared,
so this holds across serve processes behind one load balancer and across a restart. Rows older than
the signing window (plus a margin for clock skew) are deleted, at most once a minute.

It runs after Bolt's signature check, so only correctly signed requests are recorded. If Postgres
cannot be reached the request is let through (logged): the work it asks for needs Postgres anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

SIGNING_WINDOW_S = 300  # Bolt refuses a timestamp further than this from now
KEEP_S = SIGNING_WINDOW_S + 300
PRUNE_EVERY_S = 60.0

_CLAIM = ("INSERT INTO shepherd.slack_requests (signature, request_ts) VALUES (%s, %s)"
          " ON CONFLICT DO NOTHING RETURNING 1")
_PRUNE = "DELETE FROM shepherd.slack_requests WHERE seen_at < now() - make_interval(secs => %s)"


def _header(req: AsyncBoltRequest, name: str) -> str | None:
    values = req.headers.get(name)
    return str(values[0]) if values else None


class ReplayGuard(AsyncMiddleware):
    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._pruned_at = 0.0
        self.replays = 0  # acknowledged and not run, since start

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:  # noqa: A002
        signature = _header(req, "x-slack-signature")
        stamp = _header(req, "x-slack-request-timestamp")
        if not signature or not stamp or not stamp.isdigit():  # Socket Mode: nothing signed to replay
            return await next()
        try:
            first = await asyncio.to_thread(self.claim, signature, int(stamp))
        except Exception as err:  # Postgres away: let it through rather than drop a real command
            log.warning("replay guard could not record a request (%s): letting it through", type(err).__name__)
            return await next()
        if not first:
            self.replays += 1
            log.warning("a signed request was delivered again (timestamp %s): acknowledged, not run again", stamp)
            return BoltResponse(status=200, body="")
        return await next()

    def claim(self, signature: str, request_ts: int) -> bool:
        """True the first time this (signature, timestamp) is seen."""
        with self.pool.connection() as conn, conn.transaction():
            # Not waiting for the WAL flush (an fsync per request, in the ack's path): a row lost in a
            # Postgres crash within its last fraction of a second only lets that one request run again.
            conn.execute("SET LOCAL synchronous_commit = off")
            first = conn.execute(_CLAIM, (signature, request_ts)).fetchone() is not None
            now = time.monotonic()
            if now - self._pruned_at >= PRUNE_EVERY_S:
                self._pruned_at = now
                conn.execute(_PRUNE, (KEEP_S,))
        return first
