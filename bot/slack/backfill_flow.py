"""What `/backfill` does: plan (with Run/Dismiss), run, and act on a running job."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from bot.errors import ConflictError, ShepherdError, UpstreamError, UserInputError
from bot.jobs.ids import new_job_id
from bot.planning import BackfillRequest
from bot.slack import blocks, job_blocks
from bot.slack.deps import SlackDeps, Who
from bot.slack.messages import note
from bot.slack.out import SlackOut
from commands import limits, render
from commands import verbs as v
from commands.models import BackfillPlan

log = logging.getLogger(__name__)


class BackfillFlow:
    def __init__(self, deps: SlackDeps, out: SlackOut) -> None:
        self.deps = deps
        self.out = out

    async def _plan(self, args: v.BackfillArgs) -> tuple[BackfillRequest, BackfillPlan]:
        today = self.deps.now().astimezone(self.deps.tz).date()
        planning = self.deps.planning
        planning.registry.resolve(args.customers)  # unknown names fail before any query
        rng = planning.range_for(args.start, args.end, today)
        req = BackfillRequest(args.customers, rng, args.window_days, args.parallel)
        return req, await self.deps.heavy.blocking(planning.plan_backfill, req, today)

    def _auto(self, args: v.BackfillArgs) -> bool:
        """--parallel auto, or no --parallel N with backfill.parallel: auto."""
        return self.deps.config.backfill.parallel == "auto" if args.autopilot is None else args.autopilot

    async def plan(self, cmd: v.BackfillPlan, who: Who) -> str:
        req, plan = await self._plan(cmd.args)
        job_id = new_job_id("backfill")
        auto = self._auto(cmd.args)
        await asyncio.to_thread(self.deps.records.create, job_id, "backfill", "planned", who.user, who.channel, plan,
                                {"parallel": plan.parallel, "autopilot": auto})
        ts = await self.out.post(who.channel, blocks.backfill_plan(plan, job_id, who.user, autopilot=auto))
        await asyncio.to_thread(self.deps.records.set_message, job_id, "plan", who.channel, ts)
        await self._chart(req, plan, who.channel, ts, job_id)
        return job_id

    async def _chart(self, req: BackfillRequest, plan: BackfillPlan, channel: str, ts: str, job_id: str) -> None:
        if self.deps.chart_dir is None:
            return
        from bot.backfill.chart import backfill_chart

        planning = self.deps.planning
        path = self.deps.chart_dir / f"{job_id}.png"
        try:
            volumes = await self.deps.heavy.blocking(planning.backfill_volumes,
                                                     planning.registry.resolve(req.customers), plan.range)
            await self.deps.heavy.draw(backfill_chart, plan, volumes, path)
        except Exception:  # a chart is a nicety: the plan stands without it
            log.exception("could not draw the chart of %s", job_id)
            return
        await self.out.upload(channel, ts, path, f"Daily volume and windows, plan {plan.plan_hash}")

    async def run(self, cmd: v.BackfillRun, who: Who) -> str | None:
        await self.deps.check_operator(who, "start a backfill")
        now = self.deps.now()
        start_at = None
        if cmd.start_at:
            try:
                start_at = limits.start_moment(cmd.start_at, now.astimezone(self.deps.tz),
                                               self.deps.config.limits.at_horizon_days)
            except ValueError as err:
                raise UserInputError(str(err)) from None
        _, plan = await self._plan(cmd.args)
        auto = self._auto(cmd.args)
        if cmd.dry_run:
            await self.out.post(who.channel, blocks.backfill_plan(
                plan, "(dry run)", who.user, buttons=False, footer="dry run: nothing was started", autopilot=auto))
            return None
        job_id = new_job_id("backfill")
        await asyncio.to_thread(self.deps.records.create, job_id, "backfill", "starting", who.user, who.channel, plan,
                                {"parallel": plan.parallel, "start_at": start_at, "autopilot": auto})
        await self.start(job_id, plan, who, start_at, autopilot=auto)
        return job_id

    async def start(self, job_id: str, plan: BackfillPlan, who: Who, start_at: datetime | None = None,
                    autopilot: bool = False) -> None:
        parallel = "auto (the autopilot sets N; it posts each change here)" if autopilot else str(plan.parallel)
        summary = (f"{len(plan.windows)} windows for {len(plan.customers)} customer(s), {plan.range.start} to "
                   f"{plan.range.end}, parallel {parallel}; ETA {render.hours(plan.makespan_hours)}"
                   + (f" at {plan.parallel}" if autopilot else ""))
        status = blocks.job_started("backfill", job_id, who.user, summary, self.deps.now(), start_at)
        ts = await self.out.post(who.channel, status)
        await asyncio.to_thread(self.deps.records.set_message, job_id, "status", who.channel, ts)
        try:
            await self.deps.jobs.start_backfill(plan, job_id, who.user, who.channel, start_at=start_at,
                                                autopilot=autopilot)
        except ShepherdError as err:  # Temporal's refusal: did not start; a lock held or a bad plan: refused
            state = "did_not_start" if isinstance(err, UpstreamError) else "refused"
            await asyncio.to_thread(self.deps.records.set_state, job_id, state, err.message, finished=True)
            await self.out.post(who.channel, note(f":x: {job_id} did not start: {err.message}"), thread_ts=ts)
            raise
        await self.out.post(who.channel, job_blocks.job_controls(job_id, "backfill", "running"), thread_ts=ts)

    async def on_run(self, job_id: str, who: Who) -> None:
        await self.deps.check_operator(who, "start a backfill")
        row = await asyncio.to_thread(self.deps.records.claim, job_id, ("planned",), "starting")
        if row is None:
            current = await asyncio.to_thread(self.deps.records.get, job_id)
            raise ConflictError(f"{job_id} is already {current.state.replace('_', ' ')}: this button no longer acts")
        plan = BackfillPlan.model_validate(row.plan)
        auto = bool(row.params.get("autopilot"))
        await self._close_plan(job_id, plan, row.requester, f":arrow_forward: run by <@{who.user}>", auto)
        await self.start(job_id, plan, who, autopilot=auto)

    async def on_dismiss(self, job_id: str, who: Who) -> None:
        row = await asyncio.to_thread(self.deps.records.claim, job_id, ("planned",), "dismissed")
        if row is None:
            current = await asyncio.to_thread(self.deps.records.get, job_id)
            raise ConflictError(f"{job_id} is already {current.state.replace('_', ' ')}: this button no longer acts")
        if row.kind == "backfill":
            await self._close_plan(job_id, BackfillPlan.model_validate(row.plan), row.requester,
                                   f":wastebasket: dismissed by <@{who.user}>", bool(row.params.get("autopilot")))

    async def _close_plan(self, job_id: str, plan: BackfillPlan, requester: str, what: str,
                          autopilot: bool = False) -> None:
        where = await asyncio.to_thread(self.deps.records.message, job_id, "plan")
        if where is not None:
            at = self.deps.now()
            footer = f"{what} at {at:%Y-%m-%d %H:%M} UTC"
            await self.out.update(*where, blocks.backfill_plan(plan, job_id, requester, buttons=False, footer=footer,
                                                               autopilot=autopilot))
