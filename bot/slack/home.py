"""The App Home tab: one person's view of Shepherd (views.publish), and publishing it within Slack's limits.

It shows, top to bottom: a **Plan a backfill** button (the modal in bot/slack/backfill_modal.py), the
purge requests waiting for this person's approval (with their Approve/Reject buttons: the same buttons,
and the same rules, as the request in the channel), their open jobs with progress, and their last
results. `HomeTabs` publishes it when the person opens the tab (`app_home_opened`) and when something in
it changes (`SlackDeps.changed`: requests, decisions, the monitor's progress and job ends), only for
people who have opened it since the process started, and at most once per `slack.home_min_interval_s`
per person: changes in between are coalesced into the next publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.jobs.approvals import is_listed
from bot.jobs.records import JobRow
from bot.slack.deps import SlackDeps
from bot.slack.job_blocks import bar
from bot.slack.messages import actions, button, context, header, section

log = logging.getLogger(__name__)

LISTED = 8  # requests, open jobs and results shown, each
PROGRESS_WAIT_S = 2.0


@dataclass(frozen=True)
class HomeData:
    waiting: list[JobRow]  # purge requests this person may decide on and has not
    open_jobs: list[tuple[JobRow, str]]  # (job, its progress in words)
    recent: list[JobRow]
    may_approve: bool


async def home_data(deps: SlackDeps, user: str) -> HomeData:
    groups = await deps.groups_of(user)
    may_approve = is_listed(user, deps.config.access.approvers, groups)
    waiting: list[JobRow] = []
    if may_approve:
        requests = [r for r in await asyncio.to_thread(deps.records.awaiting_approval, 50) if r.requester != user]
        decided = await asyncio.to_thread(deps.approvals.decided, user, [r.id for r in requests])
        waiting = [r for r in requests if r.id not in decided][:LISTED]
    mine = await asyncio.to_thread(deps.records.of_requester, user, open_jobs=True, limit=LISTED)
    progress = await asyncio.gather(*(_progress(deps, row) for row in mine))
    recent = await asyncio.to_thread(deps.records.of_requester, user, open_jobs=False, limit=LISTED)
    return HomeData(waiting, list(zip(mine, progress, strict=True)), recent, may_approve)


async def _progress(deps: SlackDeps, row: JobRow) -> str:
    """The job's progress in words (from its workflow; its state alone when that cannot be read quickly)."""
    state = row.state.replace("_", " ")
    if row.kind not in ("backfill", "purge") or (row.started_at is None and row.state not in ("running", "paused")):
        return state
    try:
        if row.kind == "purge":
            p = await asyncio.wait_for(deps.jobs.purge_progress(row.id), PROGRESS_WAIT_S)
            chunks = [c for cs in p.clusters.values() for c in cs]
            done = sum(c.state == "done" for c in chunks)
            return f"{p.state} {bar(done, len(chunks))} ({done} of {len(chunks)} chunks)"
        b = await asyncio.wait_for(deps.jobs.progress(row.id), PROGRESS_WAIT_S)
        done = sum(w.state == "done" for w in b.windows)
        rows_done, rows_total = sum(w.done for w in b.windows), sum(w.total for w in b.windows)
        return f"{b.state} {bar(rows_done, rows_total)} ({done} of {len(b.windows)} windows)"
    except Exception as err:  # the workflow is not readable now: the Home tab still shows the rest
        log.info("Home tab: no progress for %s (%s)", row.id, type(err).__name__)
        return state


def home_view(deps: SlackDeps, user: str, data: HomeData) -> dict[str, Any]:
    ttl = deps.config.access.approval_ttl_minutes
    blocks: list[Block] = [
        header("Shepherd"),
        section("Plan, approve and watch data-maintenance jobs. Slash commands work too: `/shepherd help`."),
        actions(button("Plan a backfill", "home.plan_backfill", "backfill", "primary"), block_id="home.actions"),
        DividerBlock(),
        header("Waiting for your approval"),
    ]
    for row in data.waiting:
        plan = row.plan or {}
        expires = row.created_at.timestamp() + ttl * 60
        blocks.append(section(
            f"*Purge request `{row.id}`* by <@{row.requester}>: {plan.get('total_scorecards', 0):,} scorecards and "
            f"{plan.get('total_scores', 0):,} scores, {_range(plan)}. Plan `{row.plan_hash}`; expires "
            f"<!date^{int(expires)}^{{date_short_pretty}} {{time}}|in {ttl} minutes>."))
        value = f"{row.id}:{row.plan_hash}"
        blocks.append(actions(button("Approve", "purge.approve", value, "danger"),
                              button("Reject", "purge.reject", value), block_id=f"decide:{row.id}"))
    if not data.waiting:
        blocks.append(context("Nothing waits for your approval." if data.may_approve
                              else "You are not an approver (access.approvers in shepherd.yml)."))
    blocks += [DividerBlock(), header("Your open jobs")]
    blocks += [section(f"`{row.id}` {row.kind} · {words}") for row, words in data.open_jobs]
    if not data.open_jobs:
        blocks.append(context("No open jobs. `/backfill plan ...` or the button above plans one."))
    blocks += [DividerBlock(), header("Your recent results")]
    for row in data.recent:
        when = f" · {_when(row.finished_at)}" if row.finished_at else ""
        why = f": {row.error[:200]}" if row.error else ""
        blocks.append(section(f"`{row.id}` {row.kind} · {row.state.replace('_', ' ')}{when}{why}"))
    if not data.recent:
        blocks.append(context("No finished jobs yet."))
    return View(type="home", blocks=blocks[:100]).to_dict()


def _when(at: datetime) -> str:
    """A time each person sees in their own timezone (Slack's date formatting), with a UTC fallback."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def _range(plan: dict[str, Any]) -> str:
    rng = plan.get("range") or {}
    return f"{rng.get('start')} to {rng.get('end')}" if rng else "its range"


class HomeTabs:
    def __init__(self, deps: SlackDeps) -> None:
        self.deps = deps
        self.min_interval_s = deps.config.slack.home_min_interval_s
        self.visitors: set[str] = set()
        self.published = 0
        self._dirty: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._last: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def opened(self, user: str) -> None:
        self.visitors.add(user)
        self.refresh([user])

    def refresh(self, users: Iterable[str]) -> None:
        """Publish these people's Home tabs soon (those who have opened it); safe from any thread."""
        wanted = [u for u in users if u in self.visitors]
        if not wanted or not self.deps.config.slack.home_tab:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.refresh, wanted)
            return
        self._loop = loop
        for user in wanted:
            self._dirty.add(user)
            if user not in self._running:
                self._running[user] = loop.create_task(self._publish(user), name=f"home:{user}")

    async def _publish(self, user: str) -> None:
        try:
            while user in self._dirty:
                wait = self._last.get(user, float("-inf")) + self.min_interval_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._dirty.discard(user)
                try:
                    view = home_view(self.deps, user, await home_data(self.deps, user))
                    await self.deps.client.views_publish(user_id=user, view=view)
                    self.published += 1
                except Exception:
                    log.exception("could not publish the Home tab of %s", user)
                self._last[user] = time.monotonic()
        finally:
            self._running.pop(user, None)

    async def idle(self) -> None:
        while self._running:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._running.values())
