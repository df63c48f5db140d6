"""What the Slack listeners need, built once by the composition root (bot/app.py)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.linear import LinearClient
from bot.config import ShepherdConfig
from bot.cpu import HeavyWork
from bot.errors import NotAuthorized
from bot.jobs.approvals import Approvals, group_entries
from bot.jobs.audit import AuditLog
from bot.jobs.records import JobRecords
from bot.planning import PlanningService
from bot.purge.service import PurgeJobService
from bot.slack.messages import Message

GROUP_CACHE_S = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Who:
    """The person behind a command or click, where they are, and how to answer them privately."""

    user: str
    channel: str
    channel_name: str | None
    respond: Callable[..., Awaitable[Any]]  # Bolt's respond(): posts to the request's response_url

    async def reply(self, msg: Message) -> None:
        await self.respond(**msg.as_kwargs(), response_type="ephemeral", replace_original=False)


@dataclass
class SlackDeps:
    config: ShepherdConfig
    planning: PlanningService
    jobs: PurgeJobService  # backfill and purge jobs
    records: JobRecords
    approvals: Approvals
    audit: AuditLog
    client: AsyncWebClient
    now: Callable[[], datetime] = utc_now  # timezone-aware
    chart_dir: Path | None = None  # where plan charts are drawn; None: no chart
    linear: LinearClient | None = None  # None: no Linear API key configured (drafts only)
    changed: Callable[[Iterable[str]], None] = lambda users: None  # what each person sees changed (Home tabs)
    heavy: HeavyWork = field(default_factory=HeavyWork.inline)  # plans, verifications, charts: off the loop
    _groups: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    def check_channel(self, who: Who) -> None:
        allowed = self.config.access.allowed_channels
        if allowed and who.channel not in allowed and f"#{who.channel_name}" not in allowed:
            names = ", ".join(f"<#{c}>" if not c.startswith("#") else c for c in allowed)
            raise NotAuthorized(f"Shepherd does not take commands in this channel; use {names}")

    async def groups_of(self, user: str) -> frozenset[str]:
        """The access-list group entries (`@handle` or `S...` id) that `user` belongs to."""
        wanted = set(group_entries([*self.config.access.operators, *self.config.access.approvers]))
        if not wanted:
            return frozenset()
        out = set()
        for entry, members in (await self.group_members(wanted)).items():
            if user in members:
                out.add(entry)
        return frozenset(out)

    async def group_members(self, entries: set[str]) -> dict[str, frozenset[str]]:
        """Each user group entry (`@handle` or `S...` id) -> its members (usergroups.list, usergroups.users.list)."""
        handles: dict[str, str] = {}
        if any(e.startswith("@") for e in entries):
            listed = await self.client.usergroups_list()
            groups: list[dict[str, Any]] = listed.get("usergroups", [])
            handles = {f"@{g['handle']}": g["id"] for g in groups}
        result = {}
        for entry in entries:
            group_id = handles.get(entry, entry if not entry.startswith("@") else "")
            if not group_id:
                continue
            cached = self._groups.get(group_id)
            if cached is None or time.monotonic() - cached[0] > GROUP_CACHE_S:
                answer = await self.client.usergroups_users_list(usergroup=group_id)
                cached = (time.monotonic(), frozenset(answer.get("users", [])))
                self._groups[group_id] = cached
            result[entry] = cached[1]
        return result

    async def check_operator(self, who: Who, what: str) -> None:
        operators = self.config.access.operators
        if who.user in operators or (await self.groups_of(who.user)) & set(operators):
            return
        raise NotAuthorized(f"only operators may {what}; <@{who.user}> is not one (access.operators in "
                            "shepherd.yml). Nothing was started.")
