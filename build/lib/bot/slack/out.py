"""Shepherd's writes to Slack channels and job threads (the Web API through slack_sdk)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UpstreamError
from bot.jobs.records import JobRecords
from bot.slack.messages import Message

log = logging.getLogger(__name__)


class SlackOut:
    def __init__(self, client: AsyncWebClient, records: JobRecords) -> None:
        self.client = client
        self.records = records

    async def post(self, channel: str, msg: Message, thread_ts: str | None = None) -> str:
        try:
            answer = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **msg.as_kwargs())
        except SlackApiError as err:
            raise UpstreamError(f"Slack refused the message in <#{channel}>: {err.response.get('error')}") from None
        return str(answer["ts"])

    async def update(self, channel: str, ts: str, msg: Message) -> None:
        try:
            await self.client.chat_update(channel=channel, ts=ts, **msg.as_kwargs())
        except SlackApiError as err:
            raise UpstreamError(f"Slack refused the update in <#{channel}>: {err.response.get('error')}") from None

    async def to_thread(self, job_id: str, msg: Message) -> str | None:
        """Post in the job's thread (under its status message); None when the job has none."""
        where = await asyncio.to_thread(self.records.message, job_id, "status")
        if where is None:
            return None
        return await self.post(where[0], msg, thread_ts=where[1])

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            answer = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError:
            return None
        return str(answer.get("permalink") or "") or None

    async def upload(self, channel: str, thread_ts: str, path: Path, title: str) -> None:
        try:
            await self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, file=str(path),
                                              filename=path.name, title=title)
        except SlackApiError as err:
            log.warning("chart upload refused: %s", err.response.get("error"))
