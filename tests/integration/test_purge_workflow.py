"""The Purge workflow on the real Temporal dev server with scripted chunk activities: clusters run in
parallel, chunks start in plan order with one running per table (the next day's scores alongside
the scorecards), a drift stop halts every chain before its next chunk, a retried chunk re-runs
alone, cancel while paused stops, and locks are released however it ends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from bot.purge.workflow import Purge
from bot.temporal.models import ChunkInput, ChunkResult, ChunkSpec, PurgeInput, PurgeProgress, ReleaseLocksInput

pytestmark = pytest.mark.asyncio(loop_scope="session")
DRIFT = "the data changed since approval: chunk 1 of cluster a has 120 live rows, plan said 100 (tolerance 1%)"


class Script:
    """Fake activities: record every call; `fail` maps (cluster, index) to the error of its first attempts."""

    def __init__(self, slow: dict[str, float] | None = None, fail: dict[tuple[str, int], Exception] | None = None,
                 fail_attempts: int = 1) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.running: dict[str, list[ChunkSpec]] = {}
        self.overlaps: list[tuple[str, int, int]] = []  # (cluster, running chunk, chunk started beside it)
        self.released: list[str] = []
        self.slow = slow or {}
        self.fail = fail or {}
        self.fail_attempts = fail_attempts

    @activity.defn(name="purge_chunk")
    async def purge_chunk(self, inp: ChunkInput) -> ChunkResult:
        attempt = activity.info().attempt
        self.calls.append((inp.cluster, inp.chunk.index, attempt))
        running = self.running.setdefault(inp.cluster, [])
        self.overlaps += [(inp.cluster, r.index, inp.chunk.index) for r in running]
        running.append(inp.chunk)
        try:
            # The real guard rechecks the previous chunk too: its drift stops this one as well.
            before = self.fail.get((inp.cluster, inp.previous.index)) if inp.previous else None
            if isinstance(before, ApplicationError) and before.type == "DataDrift":
                raise ApplicationError(before.message, *before.details, type="DataDrift", non_retryable=True)
            await asyncio.sleep(self.slow.get(inp.cluster, 0.0))
            err = self.fail.get((inp.cluster, inp.chunk.index))
            if err is not None and attempt <= self.fail_attempts:
                raise err
            return ChunkResult(inp.chunk.index, inp.chunk.rows, f"mutation_{inp.chunk.index}.txt", 0.0, "local")
        finally:
            running.remove(inp.chunk)

    @activity.defn(name="release_locks")
    async def release_locks(self, inp: ReleaseLocksInput) -> int:
        self.released.append(inp.job_id)
        return 1

    def ran(self, cluster: str) -> list[int]:
        return [i for c, i, _ in self.calls if c == cluster]


def purge_input(job: str, clusters: dict[str, int]) -> PurgeInput:
    day = lambda i: f"2026-01-{5 + i // 2:02d}"  # noqa: E731 - chunk pairs: a day's scores, then its scorecards
    specs = {
        cluster: [ChunkSpec(index=i, customer="oportun", table="scores" if i % 2 == 0 else "scorecards",
                            start=day(i), end=day(i), rows=100) for i in range(n)]
        for cluster, n in clusters.items()
    }
    return PurgeInput(job_id=job, plan_hash="h", types=[1, 2, 3], clusters=specs, heartbeat_timeout_s=10,
                      max_attempts=3)


async def run(temporal_env: Any, script: Script, inp: PurgeInput, control: Any = None) -> tuple[Any, PurgeProgress]:
    queue = f"purge-wf-{uuid.uuid4()}"
    client = temporal_env.client
    async with Worker(client, task_queue=queue, workflows=[Purge],
                      activities=[script.purge_chunk, script.release_locks]):
        handle = await client.start_workflow(Purge.run, inp, id=f"purge-job:{inp.job_id}", task_queue=queue)
        if control is not None:
            await control(handle)
        try:
            outcome: Any = await asyncio.wait_for(handle.result(), timeout=60)
        except WorkflowFailureError as err:
            outcome = err
        progress = await handle.query(Purge.progress)
    return outcome, progress


async def test_a_drift_stop_halts_every_cluster_before_its_next_chunk(temporal_env: Any) -> None:
    drift = ApplicationError(DRIFT, {"chunk": 1}, type="DataDrift", non_retryable=True)
    script = Script(slow={"b": 0.8}, fail={("a", 1): drift})
    job = f"p-{uuid.uuid4().hex[:6]}"
    outcome, progress = await run(temporal_env, script, purge_input(job, {"a": 4, "b": 4}))
    assert isinstance(outcome, WorkflowFailureError) and outcome.cause.message == DRIFT  # type: ignore[attr-defined]
    assert progress.state == "stopped" and progress.stop_reason == DRIFT
    # Not retried: the guard's error is non-retryable. Chunk 2 (the next day's scores) started beside
    # chunk 1, rechecked chunk 1's guard and did nothing.
    assert sorted(script.ran("a")) == [0, 1, 2]
    assert script.ran("b") == [0]  # b's chunk 0 was in flight (in parallel with a); b stopped after it
    assert [c.state for c in progress.clusters["a"]] == ["done", "failed", "skipped", "skipped"]
    assert progress.clusters["a"][2].last_failure == DRIFT
    assert [c.state for c in progress.clusters["b"]] == ["done", "skipped", "skipped", "skipped"]
    assert progress.clusters["a"][1].last_failure == DRIFT
    assert script.released == [job]


async def test_a_failed_attempt_retries_only_that_chunk(temporal_env: Any) -> None:
    script = Script(fail={("a", 2): RuntimeError("connection reset")})
    job = f"p-{uuid.uuid4().hex[:6]}"
    outcome, progress = await run(temporal_env, script, purge_input(job, {"a": 4}))
    assert progress.state == "done", outcome
    calls = [(i, attempt) for _, i, attempt in script.calls]
    assert calls[0] == (0, 1) and calls[-1] == (3, 1)  # chunks 1 and 2 ran side by side, chunk 3 after both
    assert sorted(calls) == [(0, 1), (1, 1), (2, 1), (2, 2), (3, 1)]
    assert all(c.state == "done" and c.rows_deleted == 100 for c in progress.clusters["a"])
    assert script.released == [job]


async def test_a_chunk_that_keeps_failing_stops_the_job_with_its_reason(temporal_env: Any) -> None:
    script = Script(fail={("a", 1): RuntimeError("mutation failed: too many parts")}, fail_attempts=99)
    job = f"p-{uuid.uuid4().hex[:6]}"
    outcome, progress = await run(temporal_env, script, purge_input(job, {"a": 3}))
    assert isinstance(outcome, WorkflowFailureError) and progress.state == "stopped"
    assert progress.stop_reason is not None and progress.stop_reason.startswith("chunk 1 of cluster a failed:")
    assert "too many parts" in progress.stop_reason
    # max_attempts 3, then the chain (and the job) stop; chunk 2 (the next day's scores) had started
    # beside chunk 1 and finished.
    assert sorted(script.ran("a")) == [0, 1, 1, 1, 2]
    assert [c.state for c in progress.clusters["a"]] == ["done", "failed", "done"]
    assert script.released == [job]


async def test_cancel_while_paused_runs_nothing_more_and_releases(temporal_env: Any) -> None:
    script = Script(slow={"a": 0.5})
    job = f"p-{uuid.uuid4().hex[:6]}"

    async def control(handle: Any) -> None:
        for _ in range(100):
            if (await handle.query(Purge.progress)).clusters["a"][0].state == "running":
                break
            await asyncio.sleep(0.05)
        await handle.signal(Purge.pause)
        await asyncio.sleep(1.5)  # chunk 0 (already started) finishes; the chain holds before chunk 1
        paused = await handle.query(Purge.progress)
        assert paused.state == "paused" and [c.state for c in paused.clusters["a"]][:2] == ["done", "pending"]
        await handle.cancel()

    outcome, progress = await run(temporal_env, script, purge_input(job, {"a": 4}), control)
    assert isinstance(outcome, WorkflowFailureError) and progress.state == "cancelled"
    assert script.ran("a") == [0]
    assert [c.state for c in progress.clusters["a"]] == ["done", "cancelled", "cancelled", "cancelled"]
    assert script.released == [job]


async def test_chunks_start_in_plan_order_one_per_table_scores_before_their_scorecards(temporal_env: Any) -> None:
    script = Script(slow={"a": 0.3})
    job = f"p-{uuid.uuid4().hex[:6]}"
    outcome, progress = await run(temporal_env, script, purge_input(job, {"a": 8}))
    assert progress.state == "done", outcome
    assert script.ran("a") == list(range(8))  # started in plan order
    # Only the scorecards of day d beside the scores of day d+1: never two on one table, never a
    # day's scorecards beside its own scores.
    assert script.overlaps and all(j == i + 1 and i % 2 == 1 for _, i, j in script.overlaps), script.overlaps
    starts = [c.started or "" for c in progress.clusters["a"]]
    assert starts == sorted(starts)
