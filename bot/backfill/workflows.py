"""BackfillJob (one child per window, at most `parallel` at once) and BackfillWindow (the reindex).

Deterministic workflow code: time from workflow.now(), no I/O; every effect is an activity or a
child workflow. The window workflow's type and task queue come from the job's input, so a team
can drive its existing in-house backfill workflow instead of Shepherd's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from bot.temporal.models import (
        AutopilotPolicy,
        BackfillJobInput,
        BackfillProgress,
        BackfillProgressTable,
        HeartbeatSample,
        HeartbeatsInput,
        JobOutcome,
        ParallelChange,
        ReleaseLocksInput,
        WindowInput,
        WindowResult,
        WindowSpec,
        WindowState,
        WindowTable,
    )
    from bot.temporal.search_attributes import job_attributes
    from bot.temporal.window_table import specs_of, states_of, table_of, window_states
    from commands import autopilot as ap

RELEASE_TIMEOUT = timedelta(minutes=2)
READ_TIMEOUT = timedelta(seconds=30)
AUTOPILOT_PATCH = "backfill-autopilot"  # the reads and timers of `--parallel auto` (jobs started after it)
PROGRESS_PATCH = "autopilot-job-progress"  # the autopilot judges the job's progress over wall time
MIN_START_TO_CLOSE = timedelta(minutes=2)
FAILED_NAMED = 20  # a failed job's message names this many windows, then counts the rest


def window_workflow_id(job_id: str, w: WindowSpec) -> str:
    return f"backfill:{job_id}:{w.customer}:{w.start}:{w.end}"


def start_to_close(est_hours_hi: float) -> timedelta:
    """About twice the pessimistic estimate, never under MIN_START_TO_CLOSE."""
    return max(timedelta(hours=2 * max(est_hours_hi, 0.0)), MIN_START_TO_CLOSE)


@workflow.defn(name="BackfillWindow")
class BackfillWindow:
    @workflow.run
    async def run(self, inp: WindowInput) -> WindowResult:
        return await workflow.execute_activity(
            "reindex_window",
            inp,
            result_type=WindowResult,
            start_to_close_timeout=start_to_close(inp.est_hours_hi),
            heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=1),
                maximum_attempts=inp.max_attempts,
            ),
            # A cancelled window ends only once its activity has stopped writing.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )


def _is_cancel(err: BaseException | None) -> bool:
    while err is not None:
        if isinstance(err, CancelledError | asyncio.CancelledError):
            return True
        err = err.__cause__
    return False


def _result_fields(result: Any) -> dict[str, Any]:
    return result if isinstance(result, dict) else dict(vars(result)) if hasattr(result, "__dict__") else {}


def _conversations(task: asyncio.Task[Any]) -> int:
    """A finished window task's count (0 for a cancelled or failed one)."""
    if task.cancelled() or task.exception() is not None:
        return 0
    return int(_result_fields(task.result()).get("conversations", 0) or 0)


def _failure_text(err: BaseException) -> str:
    cause: BaseException | None = err
    parts: list[str] = []
    while cause is not None and len(parts) < 4:
        message = getattr(cause, "message", None) or str(cause)
        if message and message not in parts:
            parts.append(message)
        cause = cause.__cause__
    return ": ".join(parts)[:500] or type(err).__name__


@workflow.defn(name="BackfillJob")
class BackfillJob:
    def __init__(self) -> None:
        self.windows: dict[str, WindowState] = {}
        self.parallel = 1
        self.paused = False
        self.state = "waiting"
        self.job_id = ""
        self.start_at: str | None = None
        self.run_number = 1
        self.specs: list[WindowSpec] = []
        self.table: WindowTable | None = None
        self.epoch = ""
        self.draining = False
        self.policy: AutopilotPolicy | None = None
        self.auto = False
        self.pilot: ap.State | None = None
        self.beats: ap.Beats = {}
        self.rates: dict[str, float] = {}
        self.next_read = datetime.min.replace(tzinfo=UTC)
        self.changes: list[ParallelChange] = []
        self.by_progress: bool | None = None  # PROGRESS_PATCH, asked at the first read

    @workflow.signal
    def throttle(self, parallel: int) -> None:
        before, self.parallel = self.parallel, max(1, int(parallel))
        if self.auto:  # a person's N stands until they turn the autopilot back on
            self.auto = False
            self._changed(before, self.parallel, "hand", "set by hand: autopilot off")

    @workflow.update
    def autopilot(self, on: bool) -> bool:
        """On: the autopilot takes over from the current N (a job given its policy, still running); off: N
        stays. Answers whether the autopilot is on now."""
        if not on:
            self.auto = False
        elif (not self.auto and self.policy is not None and self.state in ("waiting", "running")
              and workflow.patched(AUTOPILOT_PATCH)):
            self.auto = True
            self.pilot = ap.start(self.policy, workflow.now().timestamp(), self.parallel)
            self.beats, self.rates, self.next_read = {}, {}, workflow.now()
            self._changed(self.parallel, self.parallel, "hand", "autopilot on")
        return self.auto

    @workflow.signal
    def pause(self) -> None:
        self.paused = True

    @workflow.signal
    def resume(self) -> None:
        self.paused = False

    @workflow.query
    def progress(self) -> BackfillProgress:
        state = "paused" if self.paused and self.state == "running" else self.state
        return BackfillProgress(job_id=self.job_id, state=state, parallel=self.parallel, paused=self.paused,
                                start_at=self.start_at, windows=list(self.windows.values()), run=self.run_number,
                                autopilot=self.auto, parallel_changes=list(self.changes))

    @workflow.query
    def progress_table(self) -> BackfillProgressTable:
        """`progress` in columns: a few hundred KB for 10,000 windows where `progress` is about 4 MB."""
        state = "paused" if self.paused and self.state == "running" else self.state
        states = states_of(self.specs, [self.windows[s.key] for s in self.specs], self.epoch)
        return BackfillProgressTable(job_id=self.job_id, state=state, parallel=self.parallel, paused=self.paused,
                                     start_at=self.start_at, windows=self._table(), states=states, run=self.run_number,
                                     autopilot=self.auto, parallel_changes=list(self.changes))

    def _table(self) -> WindowTable:
        if self.table is None:
            self.table = table_of(self.specs)
        return self.table

    @workflow.run
    async def run(self, inp: BackfillJobInput) -> Any:
        self.job_id, self.parallel, self.start_at, self.run_number = inp.job_id, inp.parallel, inp.start_at, inp.run
        self.paused, self.table = inp.paused, inp.table
        self.specs = inp.windows or (specs_of(inp.table) if inp.table else [])
        self.epoch = inp.carried.epoch if inp.carried and inp.carried.epoch else workflow.now().isoformat()
        specs = {w.key: w for w in self.specs}
        self.windows = {w.key: w for w in window_states(self.specs, inp.carried,
                                                         lambda s: window_workflow_id(inp.job_id, s))}
        self.policy, self.changes = inp.autopilot_policy, list(inp.autopilot_changes)
        if inp.autopilot and self.policy is not None and workflow.patched(AUTOPILOT_PATCH):
            self.auto = True
            if not inp.carried:  # a continued run goes on from the N it was given
                self.parallel = self.policy.clamp(self.policy.start)
        running: dict[str, asyncio.Task[Any]] = {}
        try:
            if inp.start_at:
                delay = datetime.fromisoformat(inp.start_at) - workflow.now()
                if delay > timedelta(0):
                    await workflow.sleep(delay)  # durable: survives workers and restarts
            self.state = "running"
            if self.auto and self.policy is not None:  # judged from the windows' start, not the job's creation
                self.pilot = ap.start(self.policy, workflow.now().timestamp(), self.parallel)
                self.beats, self.rates, self.next_read = {}, {}, workflow.now()
            # filled in the given (schedule) order; after a continue-as-new, the windows not yet run
            pending = [w.key for w in self.specs if self.windows[w.key].state == "pending"]
            self.draining = False  # a long history: start nothing more, continue as new once all have ended
            while pending or running:
                def ready() -> bool:
                    return (any(t.done() for t in running.values())
                            or (not self.draining and not self.paused and bool(pending)
                                and len(running) < self.parallel)
                            or (self.auto and not self.draining and workflow.now() >= self.next_read))

                if self.auto and not self.draining:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await workflow.wait_condition(ready, timeout=max(self.next_read - workflow.now(),
                                                                         timedelta(seconds=1)))
                else:
                    await workflow.wait_condition(ready)
                for key in [k for k, t in running.items() if t.done()]:
                    self._finish(key, running.pop(key))
                if pending and not self.draining and self._history_full(inp):
                    self.draining = True
                if self.draining and not running:
                    workflow.continue_as_new(self._next_run(inp))
                while not self.draining and not self.paused and pending and len(running) < self.parallel:
                    key = pending.pop(0)
                    running[key] = asyncio.create_task(self._run_window(inp, specs[key]))
                if self.auto and not self.draining and workflow.now() >= self.next_read:
                    await self._steer(inp, running, len(pending))
        except (asyncio.CancelledError, CancelledError):
            self.state = "cancelling"
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)  # every child has stopped
            for key, task in running.items():
                self._finish(key, task)  # one that finished meanwhile stays done
            now = workflow.now().isoformat()
            for w in self.windows.values():
                if w.state in ("pending", "running"):
                    w.state, w.finished = "cancelled", now
            self.state = "cancelled"
            await self._release(inp, "cancelled", None)
            raise
        failed = [w for w in self.windows.values() if w.state in ("failed", "cancelled")]
        if failed:
            self.state = "failed"
            names = ", ".join(f"{w.customer} {w.start}..{w.end} ({w.state})" for w in failed[:FAILED_NAMED])
            if len(failed) > FAILED_NAMED:
                names += f" and {len(failed) - FAILED_NAMED} more"
            message = f"{len(failed)} of {len(self.windows)} window(s) did not finish: {names}"
            await self._release(inp, "failed", message)
            raise ApplicationError(message, type="WindowsFailed", non_retryable=True)
        await self._release(inp, "done", None)
        self.state = "done"
        if inp.table is None:
            return list(self.windows.values())
        return JobOutcome(job_id=inp.job_id, windows=len(self.windows), done=len(self.windows), failed=0, cancelled=0)

    def _history_full(self, inp: BackfillJobInput) -> bool:
        """Whether to continue as new: the history is past `continue_after_events` (checked first, so a
        history recorded before this existed never reaches the patch marker)."""
        return (workflow.info().get_current_history_length() >= inp.continue_after_events
                and workflow.patched("backfill-continue-as-new"))

    def _next_run(self, inp: BackfillJobInput) -> BackfillJobInput:
        """The next run's input: the same job, its windows in columns and what each has done so far."""
        windows = [self.windows[s.key] for s in self.specs]
        return replace(inp, windows=[], table=self._table(), carried=states_of(self.specs, windows, self.epoch),
                       parallel=self.parallel, paused=self.paused, autopilot=self.auto,
                       autopilot_changes=list(self.changes))

    async def _steer(self, inp: BackfillJobInput, tasks: dict[str, asyncio.Task[Any]], pending: int) -> None:
        """Read the running windows' heartbeats, feed their summed rate to the autopilot, apply its N."""
        assert self.policy is not None and self.pilot is not None
        self.next_read = workflow.now() + timedelta(seconds=self.policy.interval_s)
        if self.by_progress is None:
            self.by_progress = workflow.patched(PROGRESS_PATCH)
        ids = {self.windows[k].workflow_id or "": k for k in tasks}
        try:
            samples: list[HeartbeatSample] = await workflow.execute_activity(
                "read_window_heartbeats", HeartbeatsInput(workflow_ids=sorted(ids), done_key=inp.progress_done_key),
                result_type=list[HeartbeatSample], start_to_close_timeout=READ_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=2))
        except ActivityError as err:  # no reading this time; the windows run on at the current N
            if _is_cancel(err):
                raise
            return
        if not self.auto or self.pilot is None:
            return  # turned off (or taken over by hand) while reading
        now = workflow.now().timestamp()
        after = {ids[s.workflow_id]: (s.at, s.done) for s in samples if s.at is not None and s.workflow_id in ids}
        before = self.beats
        self.beats, self.rates = ap.advance(self.beats, self.rates, after)
        seen = ap.reading(now, len(ids), self.rates)
        if self.by_progress:
            # A window that ended during the read counts whole; one between its activity's end and its own
            # (no heartbeat to read) keeps its last count: the job's count never dips for a read's timing.
            ended = sum(w.done for w in self.windows.values() if w.state == "done") + sum(
                _conversations(t) if t.done() else before[k][1] if k not in self.beats and k in before else 0
                for k, t in tasks.items() if k in ids.values())
            seen = ap.Reading(now, len(ids), seen.aggregate, done=ap.job_done(now, ended, self.beats, self.rates),
                              known=seen.running)
        self.pilot = ap.observe(self.pilot, seen)
        self.pilot, change = ap.decide(self.pilot, self.policy, now, pending)
        if change is not None:
            self.parallel = change.to_n
            self._changed(change.from_n, change.to_n, "autopilot", ap.describe(change))

    def _changed(self, before: int, after: int, by: str, reason: str) -> None:
        self.changes.append(ParallelChange(seq=len(self.changes) + 1, at=workflow.now().isoformat(), from_n=before,
                                           to_n=after, by=by, reason=reason))

    async def _run_window(self, inp: BackfillJobInput, spec: WindowSpec) -> Any:
        w = self.windows[spec.key]
        w.state, w.attempt, w.started = "running", w.attempt + 1, workflow.now().isoformat()
        w.workflow_id = window_workflow_id(inp.job_id, spec)
        return await workflow.execute_child_workflow(
            inp.window_workflow,
            self._child_input(inp, spec),
            id=w.workflow_id,
            # The cluster's queue (its workers run near it); inputs recorded before it existed carry None.
            task_queue=spec.task_queue or inp.window_task_queue or workflow.info().task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=job_attributes(inp.job_id, "backfill-window", [spec.customer], [spec.cluster],
                                             inp.requester) if inp.tag_windows else None,
        )

    def _child_input(self, inp: BackfillJobInput, spec: WindowSpec) -> Any:
        window = WindowInput(
            job_id=inp.job_id, customer=spec.customer, cluster=spec.cluster, start=spec.start, end=spec.end,
            conversations=spec.conversations, est_hours_hi=spec.est_hours_hi,
            heartbeat_timeout_s=inp.heartbeat_timeout_s, max_attempts=inp.max_attempts,
            progress_done_key=inp.progress_done_key, progress_total_key=inp.progress_total_key,
        )
        if not inp.input_mapping:
            return window
        fields = vars(window)
        return {theirs: fields[ours] for theirs, ours in inp.input_mapping.items()}

    def _finish(self, key: str, task: asyncio.Task[Any]) -> None:
        w = self.windows[key]
        w.finished = workflow.now().isoformat()
        exc = task.exception() if not task.cancelled() else CancelledError("cancelled")
        if exc is not None:
            w.state = "cancelled" if _is_cancel(exc) else "failed"
            w.last_failure = _failure_text(exc)
            return
        result = task.result()
        found = _result_fields(result)
        w.state = "done"
        w.done = w.total = int(found.get("conversations", w.total) or 0)
        w.region = found.get("region")
        w.resumed_from = found.get("resumed_from")
        w.attempt = int(found.get("attempt", w.attempt) or w.attempt)
        w.worker = found.get("worker") or w.worker
        w.day = None

    async def _release(self, inp: BackfillJobInput, state: str, error: str | None) -> None:
        """Release the job's locks (recording how it ended); a cancel arriving meanwhile waits for it."""
        task = asyncio.create_task(workflow.execute_activity(
            "release_locks", ReleaseLocksInput(job_id=inp.job_id, state=state, error=error),
            start_to_close_timeout=RELEASE_TIMEOUT, retry_policy=RetryPolicy(maximum_attempts=10),
        ))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:  # every window has already ended: finish releasing, then end as planned
            await task
