"""Acting on jobs: status, the job list, and cancel (confirmed by button), pause, resume, throttle, retry."""

from __future__ import annotations

import asyncio

from bot.errors import UserInputError
from bot.jobs.records import JobRow
from bot.monitor.job_view import JobViews
from bot.slack import blocks, job_blocks
from bot.slack.deps import SlackDeps, Who
from bot.slack.messages import Message, note
from bot.slack.out import SlackOut
from commands import verbs as v

NOT_STARTED = ("planned", "awaiting_approval", "approved", "starting", "dismissed", "rejected", "expired", "stale",
               "refused", "did_not_start", "lost")


class JobFlow:
    def __init__(self, deps: SlackDeps, out: SlackOut) -> None:
        self.deps = deps
        self.out = out

    async def _row(self, job_id: str) -> JobRow:
        return await asyncio.to_thread(self.deps.records.get, job_id)

    async def status(self, cmd: v.JobStatus, who: Who) -> None:
        if cmd.job is None:
            await self.jobs(who)
            return
        await who.reply(await self.status_message(await self._row(cmd.job)))

    async def status_message(self, row: JobRow) -> Message:
        if row.state in NOT_STARTED:
            reason = f": {row.error}" if row.error else ""
            return note(f"{row.kind.capitalize()} `{row.id}` is {row.state.replace('_', ' ')}{reason} "
                        f"(requested by <@{row.requester}>).")
        if row.kind == "verify":
            return job_blocks.verification(row.id, row.state, row.requester, row.plan or {}, row.params)
        views = JobViews(self.deps.records.pool, self.deps.config.monitor.windows_listed,
                         self.deps.config.monitor.stall_minutes * 60)
        if row.kind == "purge":
            return views.purge_status(row.id, row.requester, await self.deps.jobs.purge_progress(row.id),
                                      self.deps.now())
        progress = await self.deps.jobs.progress(row.id)  # the monitor's figures, from its samples
        _, msg = await asyncio.to_thread(views.backfill_status, row.id, row.requester, row.plan or {}, progress,
                                         self.deps.now())
        return job_blocks.with_failures(msg, progress)

    async def jobs(self, who: Who) -> None:
        rows = await asyncio.to_thread(self.deps.records.recent, 15)
        links: dict[str, str] = {}
        for row in rows:
            where = await asyncio.to_thread(self.deps.records.message, row.id, "status")
            where = where or await asyncio.to_thread(self.deps.records.message, row.id, "plan")
            if where is not None and (link := await self.out.permalink(*where)):
                links[row.id] = link
        await who.reply(job_blocks.jobs_list(rows, links))

    async def ask(self, job_id: str, action: str, who: Who) -> None:
        await self.deps.check_operator(who, f"{action} a job")
        row = await self._row(job_id)
        await who.reply(blocks.confirm(job_id, action, f"{action.capitalize()} {row.kind} `{job_id}` "
                                                       f"(state {row.state})? Running work stops."))

    async def act(self, cmd: v.JobAction, who: Who) -> None:
        if cmd.action == "cancel":  # destructive to progress: confirm by button first
            await self.ask(cmd.job, "cancel", who)
            return
        await self.control(cmd.job, cmd.action, who)

    async def control(self, job_id: str, action: str, who: Who) -> None:
        await self.deps.check_operator(who, f"{action} a job")
        row = await self._row(job_id)
        if row.state in NOT_STARTED:
            raise UserInputError(f"{row.kind} {job_id} is {row.state.replace('_', ' ')}, not running: nothing to "
                                 f"{action}")
        jobs = self.deps.jobs
        purge = row.kind == "purge"
        if action == "cancel":
            await (jobs.purge_cancel(job_id) if purge else jobs.cancel(job_id))
            said = f":stop_button: cancel requested by <@{who.user}>; running work is stopping"
        elif action == "pause":
            await (jobs.purge_pause(job_id) if purge else jobs.pause(job_id))
            said = f":double_vertical_bar: paused by <@{who.user}>: running work finishes, nothing new starts"
        else:
            await (jobs.purge_resume(job_id) if purge else jobs.resume(job_id))
            said = f":arrow_forward: resumed by <@{who.user}>"
        await self._tell(job_id, who, said)

    async def throttle(self, cmd: v.Throttle, who: Who) -> None:
        await self.deps.check_operator(who, "throttle a job")
        row = await self._row(cmd.job)
        if row.kind != "backfill":
            raise UserInputError(f"{cmd.job} is a {row.kind}: only backfills run windows in parallel")
        if cmd.auto or cmd.parallel is None:
            await self.deps.jobs.autopilot(cmd.job)
            await self._tell(cmd.job, who, f":robot_face: autopilot on, by <@{who.user}>: it sets how many windows "
                                           "run at once from their rates, starting from the current number")
            return
        was_auto = (await self.deps.jobs.progress(cmd.job)).autopilot
        await self.deps.jobs.throttle(cmd.job, cmd.parallel)
        off = f"; autopilot off until `/backfill throttle {cmd.job} auto`" if was_auto else ""
        await self._tell(cmd.job, who, f":control_knobs: throttled to {cmd.parallel} windows at once by "
                                       f"<@{who.user}>{off}")

    async def retry(self, job_id: str, failed_only: bool, who: Who) -> None:
        await self.deps.check_operator(who, "retry a job")
        row = await self._row(job_id)
        if row.kind != "backfill":
            raise UserInputError(f"{job_id} is a {row.kind}: retry re-runs backfill windows; plan a new purge instead")
        count = await self.deps.jobs.retry(job_id, failed_only)
        which = "failed and cancelled" if failed_only else "all"
        await self._tell(job_id, who, f":repeat: retry of {count} window(s) ({which}) started by <@{who.user}>")

    async def _tell(self, job_id: str, who: Who, said: str) -> None:
        await self.out.to_thread(job_id, note(said))
        await who.reply(note(said))
