"""Shepherd's writes to Slack channels and job threads (the Web API through slack_sdk).

A write is tried at once (the client retries briefly on 429, 5xx and dropped connections). If Slack
still does not take it for such a passing reason, it goes to the outbox (bot/slack/outbox.py) and
the poster delivers it once Slack answers again: a post waits for the ts Slack then gives it (at
most `wait_s`; the message stays queued after that), an edit does not wait. Slack refusing the
write itself (channel_not_found, invalid_blocks, ...) is an UpstreamError at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UpstreamError
from bot.jobs.records import JobRecords
from bot.slack.messages import Message
from bot.slack.outbox import Outbox

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "bad_gateway", "ratelimited"})
UNREACHABLE = (aiohttp.ClientError, TimeoutError, OSError)
WAIT_S = 15 * 60.0


def passing(err: SlackApiError) -> bool:
    """Whether Slack's refusal is one that passes (overload, outage), not one about the call itself."""
    status = int(getattr(err.response, "status_code", 0) or 0)
    return status >= 500 or status == 429 or str(err.response.get("error")) in TRANSIENT_ERRORS


class SlackOut:
    def __init__(self, client: AsyncWebClient, records: JobRecords, outbox: Outbox | None = None, *,
                 wait_s: float = WAIT_S, poll_s: float = 0.5) -> None:
        self.client = client
        self.records = records
        self.outbox = outbox
        self.wait_s = wait_s
        self.poll_s = poll_s

    async def post(self, channel: str, msg: Message, thread_ts: str | None = None) -> str:
        try:
            answer = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **msg.as_kwargs())
        except SlackApiError as err:
            if self.outbox is None or not passing(err):
                raise UpstreamError(f"Slack refused the message in <#{channel}>: {err.response.get('error')}") from None
            return await self._queued_post(channel, msg, thread_ts, str(err.response.get("error")))
        except UNREACHABLE as err:
            if self.outbox is None:
                raise UpstreamError(f"Slack is unreachable ({type(err).__name__}); nothing was posted") from None
            return await self._queued_post(channel, msg, thread_ts, type(err).__name__)
        return str(answer["ts"])

    async def update(self, channel: str, ts: str, msg: Message) -> None:
        try:
            await self.client.chat_update(channel=channel, ts=ts, **msg.as_kwargs())
        except SlackApiError as err:
            if self.outbox is None or not passing(err):
                raise UpstreamError(f"Slack refused the update in <#{channel}>: {err.response.get('error')}") from None
            why = str(err.response.get("error"))
            await self._queue("chat.update", channel, {**msg.as_kwargs(), "ts": ts}, None, why)
        except UNREACHABLE as err:
            if self.outbox is None:
                raise UpstreamError(f"Slack is unreachable ({type(err).__name__}); the edit was not made") from None
            await self._queue("chat.update", channel, {**msg.as_kwargs(), "ts": ts}, None, type(err).__name__)

    async def _queue(self, method: str, channel: str, payload: dict[str, Any], thread_ts: str | None,
                     why: str) -> str:
        assert self.outbox is not None
        key = f"reply:{uuid.uuid4().hex}"
        await asyncio.to_thread(self.outbox.enqueue, key, method, payload, channel=channel, thread_ts=thread_ts)
        log.warning("Slack did not take %s in %s (%s): queued in the outbox as %s", method, channel, why, key)
        return key

    async def _queued_post(self, channel: str, msg: Message, thread_ts: str | None, why: str) -> str:
        assert self.outbox is not None
        key = await self._queue("chat.postMessage", channel, msg.as_kwargs(), thread_ts, why)
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            entry = await asyncio.to_thread(self.outbox.entry, key)
            if entry is not None and entry.state == "sent" and entry.ts:
                return entry.ts
            if entry is not None and entry.state == "failed":
                raise UpstreamError(f"Slack did not take the message in <#{channel}>: {entry.last_error}")
            await asyncio.sleep(self.poll_s)
        raise UpstreamError(f"Slack has not taken the message in <#{channel}> for {self.wait_s / 60:.0f} min;"
                            " it stays queued and goes out once Slack answers")

    async def to_thread(self, job_id: str, msg: Message) -> str | None:
        """Post in the job's thread (under its status message); None when the job has none."""
        where = await asyncio.to_thread(self.records.message, job_id, "status")
        if where is None:
            return None
        return await self.post(where[0], msg, thread_ts=where[1])

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            answer = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, *UNREACHABLE):
            return None
        return str(answer.get("permalink") or "") or None

    async def upload(self, channel: str, thread_ts: str, path: Path, title: str) -> None:
        try:
            await self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, file=str(path),
                                              filename=path.name, title=title)
        except SlackApiError as err:
            log.warning("chart upload refused: %s", err.response.get("error"))
        except UNREACHABLE as err:
            log.warning("chart upload failed: Slack unreachable (%s)", type(err).__name__)
