"""The monitor: every tick, read each job that owns a status message, edit that message, post events.

Everything it posts goes through the outbox under a key derived from Temporal's state (see
commands/progress.py), and is recorded in shepherd.events_posted after it is queued: a restarted
monitor re-derives the same keys, so it posts nothing twice and misses nothing that happened while
it was down. Progress samples (shepherd.progress_samples) give the smoothed rates and ETA ranges.
What follows a job's end (its progress kept, the optional verification) is `bot.monitor.job_end`'s.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.backfill.chart import job_chart
from bot.config import ShepherdConfig
from bot.errors import ShepherdError
from bot.jobs.event_log import EventLog
from bot.monitor.job_end import JobEnd
from bot.monitor.job_view import JobViews, purge_clusters
from bot.monitor.queue_watch import QueueWatch, backfill_queues, purge_queues
from bot.monitor.reconcile import OPEN, STARTING, Reconciler
from bot.ops.logs import log_context
from bot.purge.service import PurgeJobService
from bot.slack import status_blocks
from bot.slack.messages import Message, section
from bot.slack.notices import ApprovalExpiry, RequesterNotices
from bot.slack.outbox import Outbox
from bot.temporal.models import BackfillProgress, PurgeProgress
from bot.writeups.service import WriteupService
from commands import job_story
from commands.progress import FINAL, Event, Policy, WindowSnap, window_events

log = logging.getLogger(__name__)
ACTIVE = ("running", "waiting", "paused", "cancelling")
RECONCILE_EVERY = 10  # ticks between checks of every open job's workflow (starting ones: every tick)


@dataclass(frozen=True)
class Watched:
    id: str
    kind: str
    requester: str
    db_state: str
    channel: str
    ts: str
    plan: dict[str, Any]


@dataclass
class TickResult:
    jobs: int = 0
    events: int = 0
    updates: int = 0
    verifications: int = 0  # started in the background by this tick
    seconds: float = 0.0


class Monitor:
    def __init__(self, pool: Any, jobs: PurgeJobService, outbox: Outbox, config: ShepherdConfig,
                 now: Callable[[], datetime], job_end: JobEnd | None = None, *,
                 notices: RequesterNotices | None = None, expiry: ApprovalExpiry | None = None,
                 on_change: Callable[[Iterable[str]], None] = lambda users: None,
                 draw: Callable[[job_story.Story], Awaitable[bytes]] | None = None) -> None:
        self.pool, self.jobs, self.outbox, self.config, self.now = pool, jobs, outbox, config, now
        self.notices, self.expiry, self.on_change = notices, expiry, on_change  # DMs to requesters, Home tabs
        self.draw = draw or (lambda story: asyncio.to_thread(job_chart, story))  # serve: the drawing process
        self.job_end = job_end or JobEnd(pool, outbox, WriteupService(pool, config), None, after_jobs=False)
        self._shown: dict[str, str] = {}  # job -> text last queued for its status message
        self._gate = asyncio.Semaphore(16)
        self.reconciler = Reconciler(pool, jobs, outbox, grace_s=config.monitor.start_grace_s)
        self._ticks = 0  # the first tick (at start-up) and every RECONCILE_EVERY-th check every open job
        self.events = EventLog(pool)
        self.queues = QueueWatch(jobs.client, config.monitor.no_worker_minutes * 60)
        self.views = JobViews(pool, config.monitor.windows_listed, config.monitor.stall_minutes * 60)
        self.policy = Policy(
            stall_s=config.monitor.stall_minutes * 60, contention_ratio=config.monitor.contention_ratio,
            expected_rate=config.throughput.low / 3600,
            home_region={c.name: c.regions[0].name for c in config.clusters if c.regions})

    async def tick(self) -> TickResult:
        began = time.monotonic()
        try:
            await self.reconciler.sweep(OPEN if self._ticks % RECONCILE_EVERY == 0 else STARTING)
        except Exception:
            log.exception("monitor: reconciling jobs with Temporal failed (the next tick tries again)")
        self._ticks += 1
        watched = await asyncio.to_thread(self._watched)
        results = await asyncio.gather(*(self._one(job) for job in watched))
        out = TickResult(jobs=len(watched), seconds=0.0)
        for events, updated in results:
            out.events += events
            out.updates += int(updated)
        try:
            out.verifications = await self.job_end.start_due()
        except Exception:
            log.exception("monitor: starting the verifications due failed (the next tick tries again)")
        if self.expiry is not None:
            try:
                await self.expiry.sweep()
            except Exception:
                log.exception("monitor: ending the expired approval requests failed (the next tick tries again)")
        out.seconds = round(time.monotonic() - began, 3)
        return out

    async def _one(self, job: Watched) -> tuple[int, bool]:
        async with self._gate:
            with log_context(job_id=job.id):  # every line logged while reading this job names it
                try:
                    if job.kind == "purge":
                        return await self._purge(job, await self.jobs.purge_progress(job.id))
                    return await self._backfill(job, await self.jobs.progress(job.id))
                except ShepherdError as err:  # e.g. its workflow is not started yet: next tick
                    log.info("monitor: %s not readable yet: %s", job.id, err.message)
                except Exception:
                    log.exception("monitor: reading %s failed", job.id)
                return 0, False

    # ---- backfill ----------------------------------------------------------------------

    async def _backfill(self, job: Watched, p: BackfillProgress) -> tuple[int, bool]:
        now = self.now()
        view, status = await asyncio.to_thread(self.views.backfill_status, job.id, job.requester, job.plan, p, now,
                                               record=True)
        snaps, rates = view.snaps, view.rates
        events = window_events(p.state, p.run, snaps, rates, now, self.policy)
        if p.autopilot:  # no advice to throttle: the autopilot is already steering N
            events = [replace(e, text=e.text.partition(" Consider")[0] + " The autopilot is steering N.")
                      if e.kind == "contention" else e for e in events]
        events += [Event(f"autopilot:{p.run}:{c.seq}", c.reason, "autopilot") for c in p.parallel_changes
                   if c.by == "autopilot"]  # each change of N once, with its reason and figures
        events += await self.queues.events(backfill_queues(p, self.config, self.jobs.task_queue), p.run)
        summary = told = None
        if p.state in FINAL:
            reason = None if p.state == "done" else self._failed_reason(snaps, p.state)
            events.append(Event(f"end:{p.run}", "", "finished"))
            told = job_story.story(job.id, job.plan, snaps, [
                job_story.NChange(datetime.fromisoformat(c.at), c.from_n, c.to_n, c.by) for c in p.parallel_changes],
                p.parallel, p.autopilot)
            summary = status_blocks.backfill_summary(job.id, p.state, snaps, reason, told)
        # the chart of N over time, for a job whose N moved (by the autopilot, or by hand)
        charted = told if told is not None and (told.autopilot or p.parallel_changes) else None
        return await self._publish(job, status, events, summary, p.state, p, charted)

    @staticmethod
    def _failed_reason(snaps: list[WindowSnap], state: str) -> str:
        failed = [s for s in snaps if s.state == "failed"]
        if state == "cancelled":
            return f"cancelled: {sum(s.state == 'done' for s in snaps)} windows had finished"
        names = ", ".join(f"{s.customer} {s.start}..{s.end}" for s in failed[:10])
        return f"{len(failed)} window(s) failed: {names}. Retry failed windows re-runs only those."

    # ---- purge -------------------------------------------------------------------------

    async def _purge(self, job: Watched, p: PurgeProgress) -> tuple[int, bool]:
        now = self.now()
        clusters = purge_clusters(p)
        status = self.views.purge_status(job.id, job.requester, p, now)
        events = await self.queues.events(purge_queues(p, self.config, self.jobs.task_queue), 1)
        summary = None
        if p.state in FINAL:
            events.append(Event("end:1", "", "finished"))
            workers = {name: [c.worker for c in chunks if c.worker] for name, chunks in p.clusters.items()}
            summary = status_blocks.purge_summary(job.id, p.state, clusters, p.stop_reason, workers)
        return await self._publish(job, status, events, summary, p.state, p)

    # ---- writing -------------------------------------------------------------------------

    async def _publish(self, job: Watched, status: Message, events: list[Event], summary: Message | None,
                       state: str, progress: BackfillProgress | PurgeProgress,
                       chart: job_story.Story | None = None) -> tuple[int, bool]:
        updated = False
        payload = status.as_kwargs()
        if self._shown.get(job.id) != payload["text"] + str(payload["blocks"]):
            self._shown[job.id] = payload["text"] + str(payload["blocks"])
            key = f"status:{job.id}:{time.time_ns()}"
            await asyncio.to_thread(self.outbox.enqueue, key, "chat.update", {"ts": job.ts, **payload},
                                    channel=job.channel)
            updated = True
        fresh = await asyncio.to_thread(self.events.unseen, job.id, [e.key for e in events])
        for event in events:
            if event.key not in fresh:
                continue
            if event.kind == "finished":  # before `end:` is recorded, so a crash in between repeats it
                await asyncio.to_thread(self.job_end.ended, job.id, state, event.key.partition(":")[2], progress)
                if self.notices is not None:
                    await self.notices.job_ended(job.id, job.kind, job.requester, state, event.key.partition(":")[2])
            msg = summary if event.kind == "finished" and summary is not None else Message(
                event.text, [section(event.text)])
            await asyncio.to_thread(self.outbox.enqueue, f"event:{job.id}:{event.key}", "chat.postMessage",
                                    msg.as_kwargs(), channel=job.channel, thread_ts=job.ts)
            if event.kind == "finished" and chart is not None:  # under the summary, before `end:` is recorded
                await self._upload_chart(job, event.key.partition(":")[2], chart)
            await asyncio.to_thread(self.events.mark, job.id, event.key)
        if state in FINAL and job.db_state not in FINAL:
            await asyncio.to_thread(self._finish, job.id, state)
        if updated or fresh:
            self.on_change([job.requester])
        return len(fresh), updated

    async def _upload_chart(self, job: Watched, run: str, story: job_story.Story) -> None:
        try:
            png = await self.draw(story)
        except Exception:  # a chart is a nicety: the summary stands without it
            log.exception("monitor: drawing the chart of %s failed", job.id)
            return
        payload = {"content_b64": base64.b64encode(png).decode(), "filename": f"{job.id}-run{run}.png",
                   "title": f"{job.id}: planned vs actual per window, N over time"}
        await asyncio.to_thread(self.outbox.enqueue, f"event:{job.id}:chart:{run}", "files_upload_v2", payload,
                                channel=job.channel, thread_ts=job.ts)

    # ---- Postgres ------------------------------------------------------------------------

    def _watched(self) -> list[Watched]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT j.id, j.kind, j.requester, j.state, m.channel, m.ts, j.plan FROM shepherd.jobs j"
                " JOIN shepherd.job_messages m ON m.job_id = j.id AND m.purpose = 'status'"
                " WHERE j.kind IN ('backfill', 'purge') AND j.state NOT IN ('refused', 'starting', 'approved')"
                " AND (j.state = ANY(%s) OR NOT EXISTS (SELECT 1 FROM shepherd.events_posted e"
                "      WHERE e.job_id = j.id AND e.event_key LIKE 'end:%%'))", (list(ACTIVE),)).fetchall()
        return [Watched(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or {}) for r in rows]

    def _finish(self, job_id: str, state: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE shepherd.jobs SET state = %s, finished_at = COALESCE(finished_at, now())"
                         " WHERE id = %s", (state, job_id))


async def run_monitor(monitor: Monitor, poster: Any, stop: asyncio.Event, interval_s: float,
                      on_tick: Callable[[float], None] | None = None) -> None:
    """Tick every `interval_s` (APScheduler, one tick at a time) and drain the outbox until `stop`.
    `on_tick` gets each tick's seconds (metrics)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async def tick() -> None:
        if stop.is_set():
            return
        began = time.monotonic()
        try:
            result = await monitor.tick()
        except asyncio.CancelledError:  # stopping: the scheduler's task is cancelled mid-tick
            return
        finally:
            if on_tick is not None:
                on_tick(time.monotonic() - began)
        log.debug("monitor tick: %s", result)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(tick, "interval", seconds=interval_s, max_instances=1, coalesce=True,
                      misfire_grace_time=max(int(interval_s), 1), next_run_time=datetime.now().astimezone())
    scheduler.start()
    draining = asyncio.create_task(poster.run(stop))
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        monitor.job_end.stop()
        await draining
