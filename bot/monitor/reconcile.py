"""Jobs recorded as starting or running, checked against Temporal (describe the workflow).

A job is `starting` from the moment it is recorded until Temporal confirms its workflow. If Shepherd
stops in between, or a workflow is gone, the job would show as open with nothing behind it. At
start-up and in the monitor, each such job is described: one whose workflow exists but is still
`starting` is now `running`; one without a workflow becomes `did_not_start` (it was `starting`) or
`lost` (it was running), its locks are released, and its thread says so. A start in flight is left
alone for GRACE_S after it was recorded or claimed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from bot.backfill.service import JobService
from bot.errors import UpstreamError
from bot.jobs import locks
from bot.jobs.ids import job_workflow_id
from bot.slack.messages import note
from bot.slack.outbox import Outbox

log = logging.getLogger(__name__)

GRACE_S = 120.0  # a start younger than this may still be in flight in this or another process
STARTING = ("starting",)
OPEN = ("starting", "waiting", "running", "paused", "cancelling")


@dataclass(frozen=True)
class Recorded:
    id: str
    kind: str
    state: str
    workflow_id: str
    age_s: float
    channel: str | None
    ts: str | None


class Reconciler:
    def __init__(self, pool: Any, jobs: JobService, outbox: Outbox, *, grace_s: float = GRACE_S) -> None:
        self.pool, self.jobs, self.outbox, self.grace_s = pool, jobs, outbox, grace_s

    async def sweep(self, states: tuple[str, ...] = OPEN) -> dict[str, str]:
        """Check every backfill or purge job in `states`; returns {job id: its new state} for those changed."""
        changed: dict[str, str] = {}
        for job in await asyncio.to_thread(self._recorded, states):
            try:
                exists = await self.jobs.workflow_exists(job.workflow_id)
            except UpstreamError as err:  # Temporal cannot tell now: the next sweep asks again
                log.info("reconcile: %s not checked: %s", job.id, err.message)
                continue
            young = job.age_s < self.grace_s
            if exists and job.state == "starting" and not young:
                if await asyncio.to_thread(self._move, job, "running", None):
                    changed[job.id] = "running"
            elif not exists and not (job.state == "starting" and young):
                state = "did_not_start" if job.state == "starting" else "lost"
                reason = ("its workflow was never started (Shepherd stopped while starting it)" if state ==
                          "did_not_start" else "its workflow does not exist in Temporal")
                if await asyncio.to_thread(self._move, job, state, reason):
                    await asyncio.to_thread(locks.release, self.pool, job.id)
                    await asyncio.to_thread(self._tell, job, state, reason)
                    changed[job.id] = state
        if changed:
            log.warning("reconcile: %s", ", ".join(f"{j} -> {s}" for j, s in sorted(changed.items())))
        return changed

    def _recorded(self, states: tuple[str, ...]) -> list[Recorded]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT j.id, j.kind, j.state, j.workflow_id,"
                " extract(epoch FROM now() - COALESCE(j.started_at, j.created_at))::float8, m.channel, m.ts"
                " FROM shepherd.jobs j LEFT JOIN shepherd.job_messages m ON m.job_id = j.id AND m.purpose = 'status'"
                " WHERE j.kind IN ('backfill', 'purge') AND j.state = ANY(%s) ORDER BY j.created_at",
                (list(states),)).fetchall()
        return [Recorded(r[0], r[1], r[2], r[3] or job_workflow_id(r[1], r[0]), float(r[4]), r[5], r[6])
                for r in rows]

    def _move(self, job: Recorded, state: str, reason: str | None) -> bool:
        """The job's new state, if it is still in the one it was read in (another process may have moved it)."""
        finished = state != "running"
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE shepherd.jobs SET state = %s, error = COALESCE(%s, error),"
                " finished_at = CASE WHEN %s THEN now() ELSE finished_at END WHERE id = %s AND state = %s",
                (state, reason, finished, job.id, job.state))
            return bool(cur.rowcount)

    def _tell(self, job: Recorded, state: str, reason: str) -> None:
        if job.channel is None or job.ts is None:
            return
        what = "did not start" if state == "did_not_start" else "is lost"
        text = f":x: {job.kind.capitalize()} {job.id} {what}: {reason}. Nothing is running for it; its locks are free."
        self.outbox.enqueue(f"event:{job.id}:reconciled:{state}", "chat.postMessage", note(text).as_kwargs(),
                            channel=job.channel, thread_ts=job.ts)
