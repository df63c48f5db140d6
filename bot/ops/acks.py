"""Ack latency and log context: the Bolt app timed from a request's dispatch to its answer, per command.

With process_before_response the answer is sent when the listener returns, and Shepherd's listeners
ack, then hand the rest to background tasks: the dispatch time is the ack latency Slack sees.
Used over HTTP and in Socket Mode alike (both dispatch through `async_dispatch`).
"""

from __future__ import annotations

import time
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.ops.logs import log_context
from bot.ops.metrics import ShepherdMetrics


def command_of(body: Any) -> str:
    """A bounded label: the slash command, the interaction type, or event:TYPE."""
    if not isinstance(body, dict):
        return "other"
    command = body.get("command")
    if isinstance(command, str) and command.startswith("/"):
        return command[:32]
    kind = body.get("type")
    if kind == "event_callback":
        event = body.get("event") or {}
        return f"event:{str(event.get('type', 'unknown'))[:32]}"
    if kind == "view_submission":
        return f"view_submission:{str((body.get('view') or {}).get('callback_id', ''))[:32]}"
    return str(kind)[:32] if kind else "other"


def user_of(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    user = body.get("user_id") or body.get("user") or (body.get("event") or {}).get("user")
    if isinstance(user, dict):
        user = user.get("id")
    return user if isinstance(user, str) else None


class TimedAsyncApp(AsyncApp):
    """AsyncApp recording each dispatch's duration in `metrics.ack_seconds` (when `metrics` is set)."""

    metrics: ShepherdMetrics | None = None

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        began = time.monotonic()
        try:
            with log_context(user=user_of(req.body), command=command_of(req.body)):
                return await super().async_dispatch(req)
        finally:
            if self.metrics is not None:
                self.metrics.ack_seconds.labels(command_of(req.body)).observe(time.monotonic() - began)
