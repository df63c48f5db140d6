"""The client API of backfill jobs for the rest of the bot (Slack layer, monitor, CLI).

Nothing here leaks Temporal types: callers get plain dataclasses from bot.temporal.models.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from bot import locks
from bot.config import ShepherdConfig
from bot.errors import ConflictError, UserInputError
from bot.temporal.models import BackfillJobInput, BackfillProgress, WindowSpec, WindowState
from commands.models import BackfillPlan, PurgePlan

RUNNING = {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW}


def new_job_id(kind: str) -> str:
    return f"{kind[0]}-{uuid.uuid4().hex[:6]}"


def job_workflow_id(kind: str, job_id: str) -> str:
    return f"{kind}-job:{job_id}"


def check_backfill_plan(plan: BackfillPlan, config: ShepherdConfig) -> None:
    """Refuse a plan that cannot be run, before anything starts."""
    if not plan.windows:
        raise UserInputError("the plan has no windows: nothing to backfill")
    known = {c.name for c in config.clusters}
    by_customer: dict[str, list[Any]] = defaultdict(list)
    for w in plan.windows:
        if w.cluster not in known:
            raise UserInputError(f"window {w.customer} {w.start}..{w.end} names unknown cluster {w.cluster}")
        if w.end < w.start:
            raise UserInputError(f"window {w.customer} {w.start}..{w.end} ends before it starts")
        by_customer[w.customer].append(w)
    for customer, windows in by_customer.items():
        windows.sort(key=lambda w: w.start)
        for a, b in zip(windows, windows[1:], strict=False):
            if b.start <= a.end:
                raise UserInputError(f"windows of {customer} overlap: {a.start}..{a.end} and {b.start}..{b.end}")


def window_specs(plan: BackfillPlan) -> list[WindowSpec]:
    """The plan's windows in the order a job starts them: largest first (the LPT schedule)."""
    specs = [
        WindowSpec(key=f"{w.customer}:{w.start}:{w.end}", customer=w.customer, cluster=w.cluster,
                   start=w.start.isoformat(), end=w.end.isoformat(), conversations=w.conversations,
                   est_hours_hi=w.est_hours[1])
        for w in plan.windows
    ]
    return sorted(specs, key=lambda s: -s.conversations)


class JobService:
    def __init__(self, client: Client, pool: Any, config: ShepherdConfig, task_queue: str,
                 *, heartbeat_timeout_s: float | None = None) -> None:
        self.client = client
        self.pool = pool
        self.config = config
        self.task_queue = task_queue
        self.heartbeat_timeout_s = heartbeat_timeout_s or config.backfill.heartbeat_timeout_s

    # ---- start -------------------------------------------------------------------------

    async def start_backfill(self, plan: BackfillPlan, job_id: str, requester: str, channel: str | None = None,
                             *, parallel: int | None = None, start_at: datetime | None = None) -> str:
        check_backfill_plan(plan, self.config)
        bf = self.config.backfill
        inp = BackfillJobInput(
            job_id=job_id, plan_hash=plan.plan_hash, windows=window_specs(plan),
            parallel=parallel or plan.parallel, start_at=start_at.isoformat() if start_at else None,
            window_workflow=bf.window_workflow, window_task_queue=bf.window_task_queue,
            input_mapping=dict(bf.window_input_mapping),
            heartbeat_timeout_s=self.heartbeat_timeout_s, max_attempts=bf.max_attempts,
            progress_done_key=bf.progress_done_key,
            progress_total_key=bf.progress_total_key,
        )
        workflow_id = job_workflow_id("backfill", job_id)
        await asyncio.to_thread(self._record, job_id, "backfill", requester, channel, plan, workflow_id)
        pairs = {(w.cluster, w.customer) for w in plan.windows}
        await self._lock(job_id, workflow_id, pairs)
        await self._start(inp, workflow_id)
        return job_id

    async def _start(self, inp: BackfillJobInput, workflow_id: str) -> None:
        await self.client.start_workflow(
            "BackfillJob", inp, id=workflow_id, task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )

    def _record(self, job_id: str, kind: str, requester: str, channel: str | None, plan: BackfillPlan | PurgePlan,
                workflow_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO shepherd.jobs (id, kind, state, requester, channel, plan_hash, plan, workflow_id,"
                " started_at) VALUES (%s, %s, 'running', %s, %s, %s, %s, %s, now()) ON CONFLICT (id) DO NOTHING",
                (job_id, kind, requester, channel, plan.plan_hash, plan.model_dump_json(), workflow_id),
            )

    async def _lock(self, job_id: str, workflow_id: str, pairs: set[tuple[str, str]]) -> None:
        holders = await asyncio.to_thread(locks.held, self.pool)
        running = {wf for wf in {job_workflow_id(self._kind_of(h), h) for _, _, h in holders}
                   if await self._is_running(wf)}
        try:
            await asyncio.to_thread(locks.acquire, self.pool, job_id, workflow_id, pairs, running.__contains__)
        except ConflictError:
            await asyncio.to_thread(self._set_state, job_id, "refused")
            raise

    @staticmethod
    def _kind_of(job_id: str) -> str:
        return {"b": "backfill", "p": "purge"}.get(job_id[:1], "backfill")

    async def _is_running(self, workflow_id: str) -> bool:
        try:
            desc = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return False
        return desc.status in RUNNING

    def _set_state(self, job_id: str, state: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE shepherd.jobs SET state = %s WHERE id = %s", (state, job_id))

    # ---- read --------------------------------------------------------------------------

    async def progress(self, job_id: str) -> BackfillProgress:
        handle = self.client.get_workflow_handle(job_workflow_id("backfill", job_id))
        try:
            progress: BackfillProgress = await handle.query("progress", result_type=BackfillProgress)
        except RPCError as err:
            raise UserInputError(f"no backfill job {job_id}") from err
        running = [w for w in progress.windows if w.state == "running" and w.workflow_id]
        beats = await asyncio.gather(*(self.window_heartbeat(w.workflow_id or "") for w in running))
        for w, beat in zip(running, beats, strict=True):
            self._merge(w, beat)
        return progress

    async def window_heartbeat(self, workflow_id: str) -> dict[str, Any]:
        """The last heartbeat details (and attempt, failure) of a running window's pending activity."""
        try:
            desc = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return {}
        for pending in desc.raw_description.pending_activities:
            beat: dict[str, Any] = {"attempt": pending.attempt}
            if pending.last_failure.message:
                beat["last_failure"] = pending.last_failure.message
            if pending.heartbeat_details.payloads:
                decoded = await self.client.data_converter.decode(pending.heartbeat_details.payloads)
                if decoded and isinstance(decoded[0], dict):
                    beat.update(decoded[0])
            return beat
        return {}

    def _merge(self, w: WindowState, beat: dict[str, Any]) -> None:
        bf = self.config.backfill
        if bf.progress_done_key in beat:
            w.done = int(beat[bf.progress_done_key])
        if bf.progress_total_key in beat:
            w.total = int(beat[bf.progress_total_key])
        w.region = beat.get("region", w.region)
        if beat.get("last_failure"):
            w.last_failure = str(beat["last_failure"])

    # ---- act ---------------------------------------------------------------------------

    async def throttle(self, job_id: str, parallel: int) -> None:
        if parallel < 1 or parallel > self.config.backfill.max_parallel:
            raise UserInputError(f"throttle must be between 1 and {self.config.backfill.max_parallel}")
        await self._handle(job_id).signal("throttle", parallel)

    async def pause(self, job_id: str) -> None:
        await self._handle(job_id).signal("pause")

    async def resume(self, job_id: str) -> None:
        await self._handle(job_id).signal("resume")

    async def cancel(self, job_id: str) -> None:
        await self._handle(job_id).cancel()

    async def result(self, job_id: str) -> Any:
        return await self._handle(job_id).result()

    async def retry(self, job_id: str, failed_only: bool = True) -> int:
        """A new run of a finished job with its failed (and cancelled) windows; returns how many."""
        progress = await self.progress(job_id)
        if progress.state in ("running", "paused", "waiting", "cancelling"):
            raise ConflictError(f"job {job_id} is still {progress.state}; cancel it or wait before retrying")
        plan = await asyncio.to_thread(self._plan_of, job_id)
        again = {w.key for w in progress.windows if not failed_only or w.state in ("failed", "cancelled")}
        if not again:
            raise UserInputError(f"job {job_id} has no failed or cancelled windows to retry")
        specs = [s for s in window_specs(plan) if s.key in again]
        bf = self.config.backfill
        inp = BackfillJobInput(
            job_id=job_id, plan_hash=plan.plan_hash, windows=specs, parallel=progress.parallel,
            window_workflow=bf.window_workflow, window_task_queue=bf.window_task_queue,
            input_mapping=dict(bf.window_input_mapping),
            heartbeat_timeout_s=self.heartbeat_timeout_s, max_attempts=bf.max_attempts,
            progress_done_key=bf.progress_done_key,
            progress_total_key=bf.progress_total_key, run=2,
        )
        workflow_id = job_workflow_id("backfill", job_id)
        await self._lock(job_id, workflow_id, {(s.cluster, s.customer) for s in specs})
        await self._start(inp, workflow_id)
        await asyncio.to_thread(self._set_state, job_id, "running")
        return len(specs)

    def _plan_of(self, job_id: str) -> BackfillPlan:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT plan FROM shepherd.jobs WHERE id = %s", (job_id,)).fetchone()
        if row is None:
            raise UserInputError(f"no job {job_id}")
        raw = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        return BackfillPlan.model_validate(raw)

    def _handle(self, job_id: str) -> Any:
        return self.client.get_workflow_handle(job_workflow_id("backfill", job_id))

