"""Backfill activities: reindex one window (resumable from its heartbeat), release a job's locks."""

from __future__ import annotations

import time
from datetime import date

from temporalio import activity

from bot import locks
from bot.reindex import Progress, Reindexer
from bot.temporal.deps import ActivityDeps
from bot.temporal.models import ReleaseLocksInput, WindowInput, WindowResult


class BackfillActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name="reindex_window")
    def reindex_window(self, inp: WindowInput) -> WindowResult:
        began = time.monotonic()
        details = activity.info().heartbeat_details
        last = details[0] if details else None
        resume_day = date.fromisoformat(last["day"]) if isinstance(last, dict) and last.get("day") else None
        found = self.deps.lookup.connect(inp.cluster)
        reindexer = Reindexer(self.deps.config, self.deps.source, found.client)

        def heartbeat(p: Progress) -> None:
            activity.heartbeat({
                inp.progress_done_key: p.done,
                inp.progress_total_key: p.total,
                "day": p.day.isoformat(),
                "region": found.region,
                "lookup_attempts": found.attempts,
            })

        start, end = date.fromisoformat(inp.start), date.fromisoformat(inp.end)
        activity.heartbeat({"day": (resume_day or start).isoformat(), "region": found.region,
                            "lookup_attempts": found.attempts})
        done = int(last.get(inp.progress_done_key, 0)) if isinstance(last, dict) else 0
        result = reindexer.run(inp.customer, start, end, resume_day=resume_day, done=done, on_progress=heartbeat)
        return WindowResult(
            customer=inp.customer, start=inp.start, end=inp.end, conversations=result.total,
            scorecards=result.scorecards, scores=result.scores, region=found.region,
            lookup_attempts=found.attempts, resumed_from=resume_day.isoformat() if resume_day else None,
            seconds=round(time.monotonic() - began, 3),
        )

    @activity.defn(name="release_locks")
    def release_locks(self, inp: ReleaseLocksInput) -> int:
        return locks.release(self.deps.state, inp.job_id)
