"""What the Home tab's buttons and modal do: open the "Plan a backfill" modal, plan what it asks for, and
answer a person who clicked in their Home tab (which has no channel and no response_url) by direct message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.backfill_flow import BackfillFlow
from bot.slack.backfill_modal import PlanForm, plan_view
from bot.slack.deps import SlackDeps, Who
from bot.slack.home import HomeTabs


def dm_respond(client: AsyncWebClient, user: str) -> Callable[..., Awaitable[Any]]:
    """A respond() that answers privately by direct message."""
    async def respond(text: str = "", blocks: Any = None, **_: Any) -> None:
        opened = await client.conversations_open(users=user)
        await client.chat_postMessage(channel=opened["channel"]["id"], text=text, blocks=blocks)

    return respond


def ephemeral_respond(client: AsyncWebClient, user: str, channel: str) -> Callable[..., Awaitable[Any]]:
    async def respond(text: str = "", blocks: Any = None, **_: Any) -> None:
        await client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)

    return respond


class HomeFlow:
    def __init__(self, deps: SlackDeps, backfill: BackfillFlow) -> None:
        self.deps = deps
        self.backfill = backfill
        self.tabs = HomeTabs(deps)

    def who(self, user: str) -> Who:
        """A person acting from their Home tab."""
        return Who(user, "", None, dm_respond(self.deps.client, user))

    async def open_plan(self, who: Who, trigger_id: str) -> None:
        await self.deps.client.views_open(trigger_id=trigger_id, view=plan_view(self.deps, await self._channel(who)))

    async def plan(self, form: PlanForm, user: str) -> str:
        """The submitted modal: plan as `/backfill plan` does, in the chosen channel."""
        here = Who(user, form.channel, None, ephemeral_respond(self.deps.client, user, form.channel))
        job_id = await self.backfill.plan(form.command, here)
        self.deps.changed([user])
        return job_id

    async def _channel(self, who: Who) -> str | None:
        """The channel to offer first: the person's latest job's, else the first allowed channel."""
        recent = await asyncio.to_thread(self.deps.records.of_requester, who.user, open_jobs=False, limit=1)
        mine = await asyncio.to_thread(self.deps.records.of_requester, who.user, open_jobs=True, limit=1)
        for row in (*mine, *recent):
            if row.channel:
                return row.channel
        allowed = [c for c in self.deps.config.access.allowed_channels if not c.startswith("#")]
        return allowed[0] if allowed else None
