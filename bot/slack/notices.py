"""Direct messages to the person who asked for a job: approved, rejected, expired, and the job's end.

Each goes through the outbox under `dm:{job}:{event}`, so however often it is decided (a redelivered
click, a restarted monitor) it is sent once. The direct message channel comes from conversations.open,
the link to the job's thread from chat.getPermalink (without one the message names the channel). When
`slack.requester_dms` is off nothing is sent.

`ApprovalExpiry.sweep` ends the requests nobody decided on within `access.approval_ttl_minutes`: each
copy (channel and direct messages) is edited to say so, without buttons, and the requester is told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.approvals import Approvals
from bot.jobs.records import JobRecords
from bot.slack import blocks
from bot.slack.approval_copies import for_approver
from bot.slack.messages import note
from bot.slack.outbox import Outbox
from commands.models import PurgePlan

log = logging.getLogger(__name__)

END_WORDS = {"done": ":white_check_mark: is done", "failed": ":x: failed", "cancelled": ":stop_button: was cancelled",
             "stopped": ":warning: stopped (the data changed under it)"}


class RequesterNotices:
    def __init__(self, client: AsyncWebClient, outbox: Outbox, records: JobRecords, *, enabled: bool = True) -> None:
        self.client, self.outbox, self.records, self.enabled = client, outbox, records, enabled
        self._dms: dict[str, str] = {}

    async def tell(self, job_id: str, requester: str, event: str, text: str) -> bool:
        """Queue `text` (and a link to the job's thread) for the requester; False when not sent."""
        key = f"dm:{job_id}:{event}"
        if not self.enabled or await asyncio.to_thread(self.outbox.entry, key) is not None:
            return False
        where = await asyncio.to_thread(self._where, job_id)
        link = await self._permalink(*where) if where else None
        if link:
            text += f" <{link}|Open its thread>."
        elif where:
            text += f" It is in <#{where[0]}>."
        channel = await self._dm(requester)
        if channel is None:
            return False
        await asyncio.to_thread(self.outbox.enqueue, key, "chat.postMessage", note(text).as_kwargs(), channel=channel)
        return True

    async def job_ended(self, job_id: str, kind: str, requester: str, state: str, run: str = "1") -> bool:
        words = END_WORDS.get(state, f"ended ({state})")
        return await self.tell(job_id, requester, f"end:{run}", f"Your {kind} `{job_id}` {words}.")

    def _where(self, job_id: str) -> tuple[str, str] | None:
        for purpose in ("status", "request", "plan"):
            found = self.records.message(job_id, purpose)
            if found is not None:
                return found
        return None

    async def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            answer = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as err:
            log.info("no permalink for %s/%s: %s", channel, ts, err.response.get("error"))
            return None
        return str(answer.get("permalink") or "") or None

    async def _dm(self, user: str) -> str | None:
        if user not in self._dms:
            try:
                answer = await self.client.conversations_open(users=user)
            except SlackApiError as err:
                log.warning("cannot open a direct message with %s: %s", user, err.response.get("error"))
                return None
            self._dms[user] = str(answer["channel"]["id"])
        return self._dms[user]


class ApprovalExpiry:
    def __init__(self, approvals: Approvals, records: JobRecords, outbox: Outbox, notices: RequesterNotices,
                 now: Callable[[], datetime], changed: Callable[[Iterable[str]], None] = lambda users: None) -> None:
        self.approvals, self.records, self.outbox, self.notices = approvals, records, outbox, notices
        self.now, self.changed = now, changed

    async def sweep(self) -> list[str]:
        expired = await asyncio.to_thread(self.approvals.expire_due, self.now())
        for job_id in expired:
            try:
                await self._ended(job_id)
            except Exception:  # one request's copies must not keep the others from being told
                log.exception("could not show purge %s as expired", job_id)
        return expired

    async def _ended(self, job_id: str) -> None:
        row = await asyncio.to_thread(self.records.get, job_id)
        ttl = self.approvals.access.approval_ttl_minutes
        said = f":hourglass: Expired: nobody approved it within {ttl} minutes. Nothing was deleted."
        msg = blocks.purge_plan(PurgePlan.model_validate(row.plan), job_id, row.requester, approval=said)
        request = await asyncio.to_thread(self.records.message, job_id, "request")
        copies = await asyncio.to_thread(self.records.copies, job_id)
        shown = [(request, msg)] if request else []
        shown += [(copy, for_approver(msg, request[0] if request else None)) for copy in copies.values()]
        for (channel, ts), what in shown:
            await asyncio.to_thread(self.outbox.enqueue, f"expired:{job_id}:{channel}:{ts}", "chat.update",
                                    {"ts": ts, **what.as_kwargs()}, channel=channel)
        await self.notices.tell(job_id, row.requester, "expired",
                                f":hourglass: Your purge request `{job_id}` expired: nobody approved it within "
                                f"{ttl} minutes. Nothing was deleted; run /purge again for a fresh plan.")
        self.changed([row.requester, *copies])
