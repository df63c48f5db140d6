"""The client API of backfill jobs for the rest of the bot (Slack layer, monitor, CLI).

Nothing here leaks Temporal types: callers get plain dataclasses from bot.temporal.models, and
Shepherd's errors (UserInputError, ConflictError, UpstreamError).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bot.backfill.autopilot import autopilot_policy
from bot.backfill.job_input import check_backfill_plan, window_specs
from bot.backfill.workflows import window_workflow_id
from bot.config import ShepherdConfig
from bot.errors import ConflictError, UpstreamError, UserInputError
from bot.jobs import locks
from bot.jobs.ids import job_workflow_id
from bot.temporal import search_attributes
from bot.temporal.models import BackfillJobInput, BackfillProgress, BackfillProgressTable, WindowSpec, WindowState
from bot.temporal.window_table import specs_of, table_of, window_states
from commands.models import BackfillPlan, PurgePlan

RUNNING = {WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW}
LOCK_GRACE_S = 60.0  # a lock this young is never stale: its job may be starting its workflow
ACTIVE = ("waiting", "running", "paused", "cancelling")
# The largest payload a job sends: its continue-as-new input and its `progress_table` answer, the input plus
# about 18 bytes a window of state (measured: 199 KB and 378 KB for 10,000 windows). Kept under Temporal's
# 512 KB payload warning, with room for long names.
MAX_PAYLOAD_BYTES = 480 * 1024
STATE_BYTES_PER_WINDOW = 24


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
                             parallel: int | None = None, start_at: datetime | None = None,
                             autopilot: bool | None = None) -> str:
        """Record the job, lock its (cluster, customer) pairs and start its workflow; once per job id.

        `autopilot` (None: the configuration's backfill.parallel decides): the job finds its own N."""
        check_backfill_plan(plan, self.config)
        auto = self.config.backfill.parallel == "auto" if autopilot is None else autopilot
        parallel = autopilot_policy(self.config).start if auto else parallel or plan.parallel
        if not 1 <= parallel <= self.config.backfill.max_parallel:
            raise UserInputError(f"--parallel {parallel} must be between 1 and {self.config.backfill.max_parallel}")
        if start_at is not None and start_at.tzinfo is None:
            raise UserInputError("--at needs a time zone (or UTC)")
        specs = window_specs(plan)
        inp = self._job_input(job_id, plan, specs, parallel, run=1)
        inp.start_at, inp.autopilot = start_at.isoformat() if start_at else None, auto
        workflow_id = job_workflow_id("backfill", job_id)
        created = await asyncio.to_thread(self._record, job_id, "backfill", requester, channel, plan, workflow_id)
        if not created and await self._exists(workflow_id):
            return job_id  # a double click or a retried command: the job is already there
        await self._lock(job_id, workflow_id, {(w.cluster, w.customer) for w in plan.windows})
        await self._start(inp, specs, workflow_id, WorkflowIDReusePolicy.REJECT_DUPLICATE, requester)
        return job_id

    def input_bytes(self, inp: BackfillJobInput) -> int:
        """The size of the job's input as the client's data converter encodes it."""
        [payload] = self.client.data_converter.payload_converter.to_payloads([inp])
        return payload.ByteSize()

    def _job_input(self, job_id: str, plan: BackfillPlan, specs: list[WindowSpec], parallel: int,
                   run: int) -> BackfillJobInput:
        """The windows travel in columns (`table`), whatever the plan's size; refused if still too large."""
        bf = self.config.backfill
        if bf.window_task_queue is None:  # Shepherd's own windows run on their cluster's queue
            specs = [replace(s, task_queue=self.config.cluster_queue(s.cluster)) for s in specs]
        inp = BackfillJobInput(
            job_id=job_id, plan_hash=plan.plan_hash, windows=[], table=table_of(specs), parallel=parallel,
            window_workflow=bf.window_workflow, window_task_queue=bf.window_task_queue,
            input_mapping=dict(bf.window_input_mapping), run=run,
            heartbeat_timeout_s=self.heartbeat_timeout_s, max_attempts=bf.max_attempts,
            progress_done_key=bf.progress_done_key, progress_total_key=bf.progress_total_key,
            continue_after_events=bf.continue_after_events,
            autopilot_policy=autopilot_policy(self.config),
        )
        size = self.input_bytes(inp) + STATE_BYTES_PER_WINDOW * len(specs)
        if size > MAX_PAYLOAD_BYTES:
            raise UserInputError(f"{len(specs):,} windows would make the job's progress {size // 1024:,} KB, more"
                                 f" than the {MAX_PAYLOAD_BYTES // 1024} KB a job may carry: split the customers"
                                 " over two jobs")
        return inp

    async def _start(self, inp: BackfillJobInput, specs: list[WindowSpec], workflow_id: str,
                     reuse: WorkflowIDReusePolicy, requester: str) -> None:
        attributes = search_attributes.job_attributes(
            inp.job_id, "backfill", (w.customer for w in specs), (w.cluster for w in specs), requester)
        inp.tag_windows, inp.requester = True, requester
        try:
            await search_attributes.start_with_attributes(
                self.client, "BackfillJob", inp, workflow_id, self.task_queue, attributes, reuse,
                untagged=replace(inp, tag_windows=False))
        except WorkflowAlreadyStartedError:  # it ran already and closed: starting it again must not rerun it
            await asyncio.to_thread(locks.release, self.pool, inp.job_id)
            return
        except RPCError as err:
            await asyncio.to_thread(locks.release, self.pool, inp.job_id)
            await asyncio.to_thread(self._set_state, inp.job_id, "did_not_start", f"Temporal refused: {err.message}")
            raise UpstreamError(f"Temporal refused to start job {inp.job_id}: {err.message}") from None
        await asyncio.to_thread(self._set_state, inp.job_id, "running", None)

    async def start_tagged(self, workflow: str, inp: Any, workflow_id: str, attributes: TypedSearchAttributes,
                           reuse: WorkflowIDReusePolicy) -> None:
        await search_attributes.start_with_attributes(self.client, workflow, inp, workflow_id, self.task_queue,
                                                      attributes, reuse)

    def _record(self, job_id: str, kind: str, requester: str, channel: str | None, plan: BackfillPlan | PurgePlan,
                workflow_id: str) -> bool:
        """Insert the job's row (or take over its planned row); False when it was there already."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                "INSERT INTO shepherd.jobs (id, kind, state, requester, channel, plan_hash, plan, workflow_id,"
                " started_at) VALUES (%s, %s, 'starting', %s, %s, %s, %s, %s, now())"
                # A row posted as a plan (or approved) and claimed by its button becomes the job; it is
                # `starting` until Temporal confirms its workflow (`_start`), so a crash leaves no "running" ghost.
                " ON CONFLICT (id) DO UPDATE SET state = 'starting', plan = EXCLUDED.plan,"
                " plan_hash = EXCLUDED.plan_hash, workflow_id = EXCLUDED.workflow_id, started_at = now()"
                " WHERE shepherd.jobs.state IN ('planned', 'starting', 'approved')",
                (job_id, kind, requester, channel, plan.plan_hash, plan.model_dump_json(), workflow_id),
            )
            return bool(cur.rowcount)

    async def _lock(self, job_id: str, workflow_id: str, pairs: set[tuple[str, str]]) -> None:
        loop = asyncio.get_running_loop()

        def is_running(holder_workflow_id: str) -> bool:  # called from the locking thread
            return asyncio.run_coroutine_threadsafe(self._is_running(holder_workflow_id), loop).result(timeout=30)

        try:
            await asyncio.to_thread(locks.acquire, self.pool, job_id, workflow_id, pairs, is_running,
                                    young_s=LOCK_GRACE_S)
        except ConflictError as err:
            await asyncio.to_thread(self._set_state, job_id, "refused", err.message)
            raise

    async def _is_running(self, workflow_id: str) -> bool:
        try:
            desc = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise UpstreamError(f"cannot tell whether {workflow_id} still runs: {err.message}") from None
        return desc.status in RUNNING

    async def workflow_exists(self, workflow_id: str) -> bool:
        """Whether Temporal knows the workflow (running or closed); UpstreamError when it cannot tell."""
        return await self._exists(workflow_id)

    async def _exists(self, workflow_id: str) -> bool:
        try:
            await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise UpstreamError(f"cannot read {workflow_id}: {err.message}") from None
        return True

    def _set_state(self, job_id: str, state: str, error: str | None = None) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE shepherd.jobs SET state = %s, error = %s WHERE id = %s", (state, error, job_id))

    # ---- read --------------------------------------------------------------------------

    async def progress(self, job_id: str) -> BackfillProgress:
        """The job's query, with each running window's last heartbeat (from describe()) merged in."""
        try:
            progress = await self._query_progress(job_id)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise UserInputError(f"no backfill job {job_id}") from None
            raise UpstreamError(f"cannot read job {job_id}: {err.message}") from None
        running = [w for w in progress.windows if w.state == "running" and w.workflow_id]
        beats = await asyncio.gather(*(self.window_heartbeat(w.workflow_id or "") for w in running))
        for w, beat in zip(running, beats, strict=True):
            self._merge(w, beat)
        return progress

    async def _query_progress(self, job_id: str) -> BackfillProgress:
        """The `progress_table` query (columns), or `progress` from a worker that predates it."""
        handle = self._handle(job_id)
        try:
            table: BackfillProgressTable = await handle.query("progress_table", result_type=BackfillProgressTable)
        except WorkflowQueryFailedError as err:
            if "progress_table" not in str(err):
                raise UpstreamError(f"cannot read job {job_id}: {err}") from None
            progress: BackfillProgress = await handle.query("progress", result_type=BackfillProgress)
            return progress
        windows = window_states(specs_of(table.windows), table.states, lambda s: window_workflow_id(job_id, s))
        return BackfillProgress(job_id=table.job_id, state=table.state, parallel=table.parallel, paused=table.paused,
                                start_at=table.start_at, windows=windows, run=table.run, autopilot=table.autopilot,
                                parallel_changes=table.parallel_changes)

    async def window_heartbeats(self, job_id: str) -> dict[str, dict[str, Any]]:
        """{window key: last heartbeat details} of the job's running windows."""
        progress = await self.progress(job_id)
        running = [w for w in progress.windows if w.state == "running" and w.workflow_id]
        beats = await asyncio.gather(*(self.window_heartbeat(w.workflow_id or "") for w in running))
        return {w.key: beat for w, beat in zip(running, beats, strict=True)}

    async def window_heartbeat(self, workflow_id: str) -> dict[str, Any]:
        """The last heartbeat details (with attempt and last failure) of a window's pending activity."""
        try:
            desc = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return {}
        for pending in desc.raw_description.pending_activities:
            beat: dict[str, Any] = {"attempt": pending.attempt}
            if pending.last_worker_identity:
                beat["worker"] = pending.last_worker_identity
            if pending.HasField("last_heartbeat_time"):
                beat["heartbeat_at"] = pending.last_heartbeat_time.ToDatetime(tzinfo=UTC).isoformat()
            if pending.last_failure.message:
                beat["last_failure"] = pending.last_failure.message
            if pending.heartbeat_details.payloads:
                decoded = await self.client.data_converter.decode(pending.heartbeat_details.payloads)
                if decoded and isinstance(decoded[-1], dict):
                    beat.update(decoded[-1])
            return beat
        return {}

    def _merge(self, w: WindowState, beat: dict[str, Any]) -> None:
        bf = self.config.backfill
        if bf.progress_done_key in beat:
            w.done = int(beat[bf.progress_done_key])
        if bf.progress_total_key in beat:
            w.total = int(beat[bf.progress_total_key])
        if beat.get("day"):
            w.day = str(beat["day"])
        if beat.get("region"):
            w.region = str(beat["region"])
        if beat.get("attempt"):
            w.attempt = int(beat["attempt"])
        if beat.get("last_failure"):
            w.last_failure = str(beat["last_failure"])
        if beat.get("heartbeat_at"):
            w.heartbeat_at = str(beat["heartbeat_at"])
        if beat.get("worker"):
            w.worker = str(beat["worker"])

    # ---- act ---------------------------------------------------------------------------

    async def throttle(self, job_id: str, parallel: int) -> None:
        if not 1 <= parallel <= self.config.backfill.max_parallel:
            raise UserInputError(f"throttle must be between 1 and {self.config.backfill.max_parallel}")
        await self._signal(job_id, "throttle", parallel)

    async def autopilot(self, job_id: str) -> None:
        """Turn the job's autopilot (back) on: it sets N again from the current one."""
        try:
            on = await self._handle(job_id).execute_update("autopilot", True, result_type=bool)
        except RPCError as err:
            raise UserInputError(f"job {job_id} is not running: {err.message}") from None
        except WorkflowUpdateFailedError as err:
            raise UserInputError(f"job {job_id} cannot run the autopilot: {err.cause or err}") from None
        if not on:
            raise UserInputError(f"job {job_id} cannot run the autopilot: it has ended, or it was started by a "
                                 "Shepherd without it; set N by hand")

    async def pause(self, job_id: str) -> None:
        await self._signal(job_id, "pause")

    async def resume(self, job_id: str) -> None:
        await self._signal(job_id, "resume")

    async def cancel(self, job_id: str) -> None:
        """Ask the job to stop: it cancels every running window, waits for them, releases its locks."""
        try:
            await self._handle(job_id).cancel()
        except RPCError as err:
            raise UserInputError(f"job {job_id} is not running: {err.message}") from None

    async def result(self, job_id: str) -> Any:
        """Wait for the job's current run (raises temporalio's WorkflowFailureError if it did not finish);
        its windows' states as dicts."""
        result = await self._handle(job_id).result()
        if isinstance(result, dict) and "done" in result:  # a JobOutcome: the windows are in the progress
            return [vars(w) for w in (await self.progress(job_id)).windows]
        return result

    async def wait(self, job_id: str) -> BackfillProgress:
        """Wait until the job's current run ends, however it ends; its final progress."""
        with contextlib.suppress(WorkflowFailureError):
            await self._handle(job_id).result()
        return await self.progress(job_id)

    async def retry(self, job_id: str, failed_only: bool = True) -> int:
        """A new run of a finished job with its failed and cancelled windows (all with failed_only=False)."""
        progress = await self.progress(job_id)
        if progress.state in ACTIVE:
            raise ConflictError(f"job {job_id} is still {progress.state}; cancel it or wait before retrying")
        plan = await asyncio.to_thread(self._plan_of, job_id)
        again = {w.key for w in progress.windows if not failed_only or w.state in ("failed", "cancelled")}
        if not again:
            raise UserInputError(f"job {job_id} has no failed or cancelled windows to retry")
        specs = [s for s in window_specs(plan) if s.key in again]
        inp = self._job_input(job_id, plan, specs, progress.parallel, run=progress.run + 1)
        inp.autopilot = progress.autopilot
        workflow_id = job_workflow_id("backfill", job_id)
        await self._lock(job_id, workflow_id, {(s.cluster, s.customer) for s in specs})
        await self._start(inp, specs, workflow_id, WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                          await asyncio.to_thread(self._requester_of, job_id))
        return len(specs)

    def _requester_of(self, job_id: str) -> str:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT requester FROM shepherd.jobs WHERE id = %s", (job_id,)).fetchone()
        return str(row[0]) if row else ""

    def _plan_of(self, job_id: str) -> BackfillPlan:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT plan FROM shepherd.jobs WHERE id = %s", (job_id,)).fetchone()
        if row is None or row[0] is None:
            raise UserInputError(f"no job {job_id}")
        raw = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        return BackfillPlan.model_validate(raw)

    async def _signal(self, job_id: str, name: str, *args: Any) -> None:
        try:
            await self._handle(job_id).signal(name, *args)
        except RPCError as err:
            raise UserInputError(f"job {job_id} is not running: {err.message}") from None

    def _handle(self, job_id: str) -> Any:
        return self.client.get_workflow_handle(job_workflow_id("backfill", job_id))
