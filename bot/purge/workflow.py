"""Purge(plan): one chain per cluster, clusters in parallel, chunks started in plan order.

Within a chain a chunk starts once the chunk before it has started, no chunk on its table is
running (one in-flight mutation per table per cluster) and, for scorecards, no scores chunk of the
same customer is running (scores before their scorecards). So the scores of day d+1 run while the
scorecards of day d do; the later chunk rechecks the earlier one's guard before it deletes. Pause
holds chains between chunks; a drift stop (the data changed since approval) stops every chain
before its next chunk; cancellation cancels the running chunks, whose activities kill their own
mutations, and the job ends cancelled. Locks are released however it ends.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from bot.temporal.models import (
        ChunkInput,
        ChunkResult,
        ChunkSpec,
        ChunkState,
        PurgeCarried,
        PurgeInput,
        PurgeProgress,
        ReleaseLocksInput,
    )


def _blocks(running: ChunkSpec, spec: ChunkSpec) -> bool:
    """Whether a running chunk holds `spec` back: same table, or its scores before these scorecards."""
    return running.table == spec.table or (
        spec.table == "scorecards" and running.table == "scores" and running.customer == spec.customer)


PIPELINE_PATCH = "purge-key-range-chunks"
CONTINUE_PATCH = "purge-continue-as-new"


def _holds_back(specs: list[ChunkSpec], running: set[int], k: int) -> bool:
    """Pipelined: chunk k waits while any chunk but k-1 runs (k-1's guard is rechecked with k's, so no
    chunk runs after one whose data changed), and a scorecards chunk while a scores chunk of its
    customer runs. So a table's next chunk recounts, checks the queue and issues while its mutation runs."""
    spec = specs[k]
    return any(i != k - 1 for i in running) or any(
        spec.table == "scorecards" and specs[i].table == "scores" and specs[i].customer == spec.customer
        for i in running)


def _unpacked(inp: PurgeInput) -> dict[str, list[ChunkSpec]]:
    """The chunks per cluster: packed as JSON (new purges), or as dataclasses (purges started before)."""
    if not inp.packed:
        return inp.clusters
    return {cluster: [ChunkSpec(**fields) for fields in chunks] for cluster, chunks in json.loads(inp.packed).items()}


def _cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


@workflow.defn(name="Purge")
class Purge:
    def __init__(self) -> None:
        self.job_id = ""
        self.state = "running"
        self.paused = False
        self.stop_reason: str | None = None
        self.cancelling = False
        self.chunks: dict[str, list[ChunkState]] = {}
        self.pipelined = False
        self.draining = False  # a long history: start no more chunks, continue as new once the running end
        self.runs = 1

    @workflow.signal
    def pause(self) -> None:
        self.paused = True

    @workflow.signal
    def resume(self) -> None:
        self.paused = False

    @workflow.query
    def progress(self) -> PurgeProgress:
        state = "paused" if self.paused and self.state == "running" else self.state
        return PurgeProgress(job_id=self.job_id, state=state, paused=self.paused, stop_reason=self.stop_reason,
                             clusters=self.chunks, runs=self.runs)

    @workflow.run
    async def run(self, inp: PurgeInput) -> PurgeProgress:
        self.job_id = inp.job_id
        # New runs let a table's next chunk start (recount, queue check, issue) while its mutation runs;
        # purges recorded before keep one chunk per table (their command order must replay unchanged).
        self.pipelined = workflow.patched(PIPELINE_PATCH)
        clusters = _unpacked(inp)
        self.chunks = {
            cluster: [ChunkState(index=c.index, customer=c.customer, table=c.table, start=c.start, end=c.end,
                                 rows=c.rows) for c in specs]
            for cluster, specs in clusters.items()
        }
        if inp.carried is not None:
            self._carry_in(inp.carried)
        tasks = [asyncio.create_task(self._chain(inp, cluster, specs)) for cluster, specs in clusters.items()]
        try:
            await workflow.wait_condition(lambda: all(t.done() for t in tasks))
        except asyncio.CancelledError:
            # A chunk whose activity finishes before it hears of the cancel stays done; every chain
            # stops before its next chunk; in-flight chunks are cancelled and kill their mutations.
            self.state, self.cancelling = "cancelling", True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.state = "cancelled"
            self._mark_rest("cancelled")
            await self._release(inp)
            raise
        if self.draining and self.stop_reason is None and not any(t.exception() for t in tasks) and any(
                s.state == "pending" for states in self.chunks.values() for s in states):
            workflow.continue_as_new(self._next_run(inp))  # the locks stay held: the job goes on
        await self._release(inp)
        for task in tasks:
            task.result()  # a bug in a chain surfaces here (chunk failures are recorded, not raised)
        if self.stop_reason:
            self.state = "stopped"
            raise ApplicationError(self.stop_reason, type="PurgeStopped", non_retryable=True)
        self.state = "done"
        return self.progress()

    async def _chain(self, inp: PurgeInput, cluster: str, specs: list[ChunkSpec]) -> None:
        running: dict[int, asyncio.Task[None]] = {}

        def may_start(k: int, spec: ChunkSpec) -> bool:
            if self.cancelling or self.stop_reason is not None or self.draining:
                return True
            if self.paused:
                return False
            if self.pipelined:
                return not _holds_back(specs, set(running), k)
            return not any(_blocks(specs[i], spec) for i in running)

        try:
            for k, spec in enumerate(specs):
                if self.chunks[cluster][k].state == "done":
                    continue  # done in an earlier run
                await workflow.wait_condition(lambda k=k, spec=spec: may_start(k, spec))  # type: ignore[misc]
                if not self.draining and self._history_full(inp):
                    self.draining = True
                if self.cancelling or self.stop_reason is not None or self.draining:
                    break
                previous = specs[k - 1] if k - 1 in running else None
                running[k] = asyncio.create_task(self._chunk(inp, cluster, spec, self.chunks[cluster][k], previous))
                running[k].add_done_callback(lambda _, k=k: running.pop(k, None))  # type: ignore[misc]
            await asyncio.gather(*running.values())
        except asyncio.CancelledError:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)
            raise
        if self.stop_reason is not None and not self.cancelling:
            for state in self.chunks[cluster]:
                if state.state == "pending":
                    state.state = "skipped"

    async def _chunk(self, inp: PurgeInput, cluster: str, spec: ChunkSpec, state: ChunkState,
                     previous: ChunkSpec | None) -> None:
        state.state, state.started = "running", workflow.now().isoformat()
        try:
            result = await workflow.execute_activity(
                "purge_chunk",
                ChunkInput(job_id=inp.job_id, cluster=cluster, chunk=spec, types=inp.types,
                           strategy=inp.strategy, max_unfinished_mutations=inp.max_unfinished_mutations,
                           drift_tolerance=inp.drift_tolerance, previous=previous),
                result_type=ChunkResult,
                # The cluster's queue; purges recorded before it existed name none (the job's own queue).
                task_queue=inp.task_queues.get(cluster),
                start_to_close_timeout=timedelta(hours=6),
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=inp.max_attempts,
                                         non_retryable_error_types=["DataDrift"]),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as err:
            cause = _cause(err)
            state.finished = workflow.now().isoformat()
            if isinstance(cause, CancelledError):
                state.state = "cancelled"
                return
            message = getattr(cause, "message", None) or str(cause)
            drift = getattr(cause, "type", "") == "DataDrift"
            details = list(getattr(cause, "details", None) or [])
            # The guard found the earlier chunk's data changed: this chunk did nothing and will not run.
            about_previous = drift and previous is not None and details[:1] == [{"chunk": previous.index}]
            state.state, state.last_failure = "skipped" if about_previous else "failed", message[:500]
            if self.stop_reason is None:
                self.stop_reason = message if drift else f"chunk {spec.index} of cluster {cluster} failed: {message}"
            return
        state.state, state.rows_deleted, state.worker = "done", result.rows_deleted, result.worker or None
        state.finished = workflow.now().isoformat()

    def _history_full(self, inp: PurgeInput) -> bool:
        """Whether to continue as new: past the input's event threshold, or Temporal suggests it (checked
        before the patch, so a purge started before this existed never reaches the patch marker)."""
        info = workflow.info()
        return (inp.continue_after_events > 0
                and (info.get_current_history_length() >= inp.continue_after_events
                     or info.is_continue_as_new_suggested())
                and workflow.patched(CONTINUE_PATCH))

    def _carry_in(self, carried: PurgeCarried) -> None:
        self.paused, self.runs = carried.paused, carried.runs + 1
        for cluster, states in self.chunks.items():
            done, by = carried.rows_deleted.get(cluster, []), carried.worker.get(cluster, [])
            for k, state in enumerate(states):
                if k < len(done) and done[k] >= 0:
                    state.state, state.rows_deleted = "done", done[k]
                    state.worker = carried.workers[by[k]] if k < len(by) and by[k] >= 0 else None

    def _next_run(self, inp: PurgeInput) -> PurgeInput:
        """The same job and plan, carrying which chunks are done, what each deleted and where, and pause."""
        workers = sorted({s.worker for states in self.chunks.values() for s in states if s.worker})
        at = {w: i for i, w in enumerate(workers)}
        carried = PurgeCarried(
            rows_deleted={c: [s.rows_deleted if s.state == "done" else -1 for s in states]
                          for c, states in self.chunks.items()},
            workers=workers,
            worker={c: [at[s.worker] if s.state == "done" and s.worker else -1 for s in states]
                    for c, states in self.chunks.items()},
            paused=self.paused, runs=self.runs)
        return replace(inp, carried=carried)

    def _mark_rest(self, how: str) -> None:
        for states in self.chunks.values():
            for s in states:
                if s.state in ("pending", "running"):
                    s.state = how

    async def _release(self, inp: PurgeInput) -> None:
        await workflow.execute_activity(
            "release_locks", ReleaseLocksInput(job_id=inp.job_id), start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_attempts=5),
        )
