"""A purge request where its approvers are: the channel copy and one direct message per eligible approver.

Eligible: listed in `access.approvers` (user ids, and user groups expanded with usergroups.list and
usergroups.users.list), not the requester, not a bot. The channel copy is posted first (by the purge
flow); then each approver gets the same summary, plan hash and Approve/Reject buttons by direct message
(conversations.open, then chat.postMessage), `slack.dm_concurrency` at a time, each copy recorded as
the job's message `dm:<user>` (a copy already recorded is not sent again). A decision on any copy
updates every copy. A direct message that cannot be sent (a deactivated person, a workspace that
restricts it) is logged and noted in the request's thread; the request stands and nothing else stops.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError

from bot.errors import UpstreamError
from bot.jobs.approvals import group_entries
from bot.slack.deps import SlackDeps
from bot.slack.messages import Message, context, note
from bot.slack.out import SlackOut

log = logging.getLogger(__name__)


class ApprovalCopies:
    def __init__(self, deps: SlackDeps, out: SlackOut) -> None:
        self.deps = deps
        self.out = out

    async def approvers(self, requester: str) -> list[str]:
        """Everyone who may approve the requester's purge, in the order listed (groups expanded)."""
        listed = self.deps.config.access.approvers
        groups = set(group_entries(listed))
        members = await self.deps.group_members(groups) if groups else {}
        found: list[str] = []
        for entry in listed:
            for user in sorted(members.get(entry, ())) if entry in groups else [entry]:
                if user != requester and user not in found:
                    found.append(user)
        return found

    async def send(self, job_id: str, msg: Message, requester: str, request: tuple[str, str]) -> list[str]:
        """Send the request to every eligible approver; returns those it reached."""
        if not self.deps.config.slack.approver_dms:
            return []
        users = await self.approvers(requester)
        sent = await asyncio.to_thread(self.deps.records.copies, job_id)
        gate = asyncio.Semaphore(self.deps.config.slack.dm_concurrency)
        failed: dict[str, str] = {}
        reached: list[str] = []

        async def one(user: str) -> None:
            if user in sent:
                reached.append(user)
                return
            async with gate:
                try:
                    opened = await self.deps.client.conversations_open(users=user)
                    channel = str(opened["channel"]["id"])
                    ts = await self.out.post(channel, for_approver(msg, request[0]))
                except SlackApiError as err:
                    failed[user] = str(err.response.get("error"))
                    return
                except UpstreamError as err:
                    failed[user] = err.message.rpartition(": ")[2]
                    return
                except Exception as err:  # Slack unreachable, say: this copy is missing, the request stands
                    log.warning("purge %s: no direct message to %s", job_id, user, exc_info=True)
                    failed[user] = type(err).__name__
                    return
            await asyncio.to_thread(self.deps.records.set_copy, job_id, user, channel, ts)
            reached.append(user)

        await asyncio.gather(*(one(u) for u in users))
        if failed:
            named = ", ".join(f"<@{u}> ({why})" for u, why in sorted(failed.items()))
            log.warning("purge %s: direct messages to %d approver(s) failed: %s", job_id, len(failed),
                        ", ".join(f"{u} {why}" for u, why in sorted(failed.items())))
            try:
                await self.out.post(request[0], note(f":warning: Could not send this request by direct message to "
                                                     f"{named}. The request stands here: they can still decide on "
                                                     "it in this channel."), thread_ts=request[1])
            except UpstreamError as err:
                log.warning("purge %s: the note about undelivered copies was refused: %s", job_id, err.message)
        return reached

    async def show(self, job_id: str, msg: Message, request: tuple[str, str] | None) -> None:
        """Every copy of the request (the channel's and each direct message) shows `msg`."""
        copies = await asyncio.to_thread(self.deps.records.copies, job_id)
        updates = [self.out.update(channel, ts, for_approver(msg, request[0] if request else None))
                   for channel, ts in copies.values()]
        if request is not None:
            updates.insert(0, self.out.update(*request, msg))
        for outcome in await asyncio.gather(*updates, return_exceptions=True):
            if isinstance(outcome, BaseException):  # one copy failing must not keep the others stale
                log.warning("purge %s: a copy of the request was not updated: %s", job_id, outcome)


def for_approver(msg: Message, channel: str | None) -> Message:
    """The request as an approver gets it by direct message: the same, and where it also stands."""
    where = f" and in <#{channel}>" if channel else ""
    line = context(f"Sent to you as an approver. It stands here{where}: the first decision on any copy counts "
                   "for all of them.")
    return Message(msg.text, [*msg.blocks, line])
