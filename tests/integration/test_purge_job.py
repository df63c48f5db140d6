"""Chunked purges on the real Temporal dev server and chdb: exact deletes, drift guard, control."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from bot.errors import ConflictError
from bot.jobs.ids import new_job_id
from bot.planning import PlanningService, PurgeRequest
from bot.purge.service import PurgeJobService
from bot.registry import CustomerRegistry
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker
from commands.models import DateRange

pytestmark = pytest.mark.asyncio(loop_scope="session")
TEN_DAYS = DateRange(start=date(2026, 1, 5), end=date(2026, 1, 14))


@pytest.fixture(scope="module")
def demo(make_demo: Any) -> Any:
    return make_demo(scale=0.002, seed=31)


def plan_for(env: Any, customer: str, config: Any = None) -> Any:
    config = config or env.config
    planning = PlanningService(config, CustomerRegistry.from_config(config), env.pool, env.lookup)
    return planning.plan_purge(PurgeRequest((customer,), TEN_DAYS), today=date(2026, 3, 1)).plan


def appeal_rows(env: Any, customer: str, cluster: str) -> tuple[int, int]:
    counts = env.ch_counts(customer, cluster, appeal=True)
    in_range = [v for d, v in counts.items() if TEN_DAYS.start <= d <= TEN_DAYS.end]
    return sum(c for c, _ in in_range), sum(s for _, s in in_range)


async def run_purge(env: Any, temporal_env: Any, plan: Any, config: Any = None, *, control: Any = None,
                    heartbeat_timeout_s: float = 10) -> Any:
    config = config or env.config
    queue = f"purge-{uuid.uuid4()}"
    jobs = PurgeJobService(temporal_env.client, env.pool, config, queue, heartbeat_timeout_s=heartbeat_timeout_s)
    deps = ActivityDeps(config, env.pool, env.pool, env.lookup)
    job = new_job_id("purge")
    async with build_worker(temporal_env.client, queue, deps):
        await jobs.start_purge(plan, job, "U_ALICE", "C_OPS")
        await jobs.start_purge(plan, job, "U_ALICE", "C_OPS")  # a double click attaches to the running job
        if control is not None:
            await control(jobs, job)
        try:
            outcome: Any = await asyncio.wait_for(jobs.purge_result(job), timeout=240)
        except WorkflowFailureError as err:
            outcome = err
        progress = await jobs.purge_progress(job)
    return outcome, progress


async def test_purge_deletes_exactly_the_appeal_rows(temporal_env: Any, demo: Any) -> None:
    plan = plan_for(demo, "oportun")
    chunks = plan.clusters[0].chunks
    # key-range chunks: the fewest mutations the cap allows, each in one partition
    assert len(chunks) == plan.mutations_lower_bound < 20 and all(c.rows <= plan.max_rows_per_mutation for c in chunks)
    assert all(c.partition == "202601" for c in chunks)
    before_ok = demo.ch_counts("oportun", "us-east-2", appeal=False)
    assert appeal_rows(demo, "oportun", "us-east-2") == (plan.total_scorecards, plan.total_scores)
    outcome, progress = await run_purge(demo, temporal_env, plan)
    assert progress.state == "done", outcome
    assert all(c.state == "done" for c in progress.clusters["us-east-2"])
    assert sum(c.rows_deleted for c in progress.clusters["us-east-2"]) == plan.total_scorecards + plan.total_scores
    assert appeal_rows(demo, "oportun", "us-east-2") == (0, 0)
    assert demo.ch_counts("oportun", "us-east-2", appeal=False) == before_ok  # nothing else touched


async def test_lightweight_strategy(temporal_env: Any, demo: Any) -> None:
    config = demo.config.model_copy(update={"purge": demo.config.purge.model_copy(update={"strategy": "lightweight"})})
    plan = plan_for(demo, "spirit", config)
    before_ok = demo.ch_counts("spirit", "voice-prod", appeal=False)
    outcome, progress = await run_purge(demo, temporal_env, plan, config)
    assert progress.state == "done", outcome
    assert appeal_rows(demo, "spirit", "voice-prod") == (0, 0)
    assert demo.ch_counts("spirit", "voice-prod", appeal=False) == before_ok


async def test_drift_guard_stops_when_rows_were_added_after_planning(temporal_env: Any, demo: Any) -> None:
    plan = plan_for(demo, "hilton")
    ch = demo.ch("chat-prod")
    day = plan.clusters[0].chunks[3].start  # the scorecards chunk: the scores run, then its guard trips
    assert [c.table for c in plan.clusters[0].chunks] == ["scores"] * 3 + ["scorecards"]
    ch.command(f"INSERT INTO `{ch.database}`.scorecards SELECT customer_id, day, scorecard_id + 900000000,"
               f" conversation_id, scorecard_type, created_at FROM `{ch.database}`.scorecards"
               " WHERE customer_id = 'hilton' AND day = {d:Date} AND scorecard_type <= 3", {"d": day})
    before = appeal_rows(demo, "hilton", "chat-prod")
    outcome, progress = await run_purge(demo, temporal_env, plan)
    assert isinstance(outcome, WorkflowFailureError)
    assert progress.state == "stopped"
    assert re.match(r"the data changed since approval: chunk 3 of cluster chat-prod \(hilton scorecards .*\) has"
                    r" [\d,]+ live rows, plan said [\d,]+ \(tolerance 1%\)", progress.stop_reason or "")
    assert progress.stop_reason in str(outcome.cause)
    states = [c.state for c in progress.clusters["chat-prod"]]
    assert states == ["done", "done", "done", "failed"]
    after = appeal_rows(demo, "hilton", "chat-prod")
    deleted_cards = sum(c.rows_deleted for c in progress.clusters["chat-prod"] if c.table == "scorecards")
    assert after[0] == before[0] - deleted_cards and after[0] > 0  # stopped: nothing after the guard deleted


async def test_pause_holds_between_chunks_then_resume_finishes(temporal_env: Any, demo: Any) -> None:
    plan = plan_for(demo, "united-east")
    seen: dict[str, Any] = {}

    async def control(jobs: PurgeJobService, job: str) -> None:
        await jobs.purge_pause(job)
        await asyncio.sleep(2.0)
        first = await jobs.purge_progress(job)
        await asyncio.sleep(1.5)
        second = await jobs.purge_progress(job)
        seen["paused"] = (first, second)
        await jobs.purge_resume(job)

    outcome, progress = await run_purge(demo, temporal_env, plan, control=control)
    first, second = seen["paused"]
    done = lambda p: sum(c.state == "done" for c in p.clusters["voice-prod"])  # noqa: E731
    assert first.state == "paused" and done(first) == done(second) <= 2 < len(plan.clusters[0].chunks)
    assert progress.state == "done", outcome


async def test_cancel_kills_the_in_flight_mutation_and_stops(temporal_env: Any, demo: Any) -> None:
    planning = PlanningService(demo.config, CustomerRegistry.from_config(demo.config), demo.pool, demo.lookup)
    whole = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))
    plan = planning.plan_purge(PurgeRequest(("marriott",), whole), today=date(2026, 3, 1)).plan
    chunks = plan.clusters[0].chunks
    assert len(chunks) >= 10
    k = next(i for i, c in enumerate(chunks) if c.table == "scorecards")  # after the scores of its days
    ch = demo.ch("chat-prod")
    scorecards = f"`{ch.database}`.scorecards"
    before = demo.ch_counts("marriott", "chat-prod", appeal=True)
    seen: dict[str, Any] = {}

    async def control(jobs: PurgeJobService, job: str) -> None:
        # Chunks 0..k-1 (scores) run; chunk k (scorecards) issues its mutation, which cannot run while
        # the table's merges are stopped: it is in flight when the cancel arrives. Later scores chunks
        # (other days) may run beside it; later scorecards chunks wait for it.
        for _ in range(400):
            rows = ch.query("SELECT mutation_id, is_done FROM system.mutations WHERE database = {d:String}"
                            " AND table = 'scorecards' AND position(command, {tag:String}) > 0",
                            {"d": ch.database, "tag": f"'shepherd:{job}:chat-prod:{k}'"})
            if rows:
                break
            await asyncio.sleep(0.05)
        assert rows and rows[0][1] == 0, rows
        seen["mutation"] = rows[0][0]
        seen["during"] = demo.ch_counts("marriott", "chat-prod", appeal=True)
        await jobs.purge_cancel(job)

    ch.command(f"SYSTEM STOP MERGES {scorecards}")
    try:
        outcome, progress = await run_purge(demo, temporal_env, plan, control=control, heartbeat_timeout_s=2)
        ended = demo.ch_counts("marriott", "chat-prod", appeal=True)
        desc = await temporal_env.client.get_workflow_handle(f"purge-job:{progress.job_id}").describe()
        mutations = ch.query("SELECT mutation_id, is_done FROM system.mutations WHERE database = {d:String}"
                             " AND table = 'scorecards'", {"d": ch.database})
    finally:
        ch.command(f"SYSTEM START MERGES {scorecards}")
    assert isinstance(outcome, WorkflowFailureError) and progress.state == "cancelled"
    states = [c.state for c in progress.clusters["chat-prod"]]
    assert set(states[:k]) == {"done"} and states[k] == "cancelled", states
    assert all(s in ("done", "cancelled") for s in states[k + 1:]), states
    assert all(s == "cancelled" for s, c in zip(states, chunks, strict=True) if c.table == "scorecards"), states
    assert not desc.raw_description.pending_activities  # no chunk activity left running
    assert seen["mutation"] not in {m for m, _ in mutations}  # killed, not left pending
    assert all(done for _, done in mutations)
    # The scores of chunk k's days went, their scorecards did not; merges are on again and nothing moves.
    assert seen["during"] != before
    days = [d for d in before if chunks[k].start <= d <= chunks[k].end]
    assert days and all(ended[d][0] == before[d][0] and ended[d][1] == 0 for d in days)
    await asyncio.sleep(1.5)
    assert demo.ch_counts("marriott", "chat-prod", appeal=True) == ended


async def test_purge_refused_while_a_backfill_holds_the_customer(temporal_env: Any, demo: Any) -> None:
    from tests.integration.test_backfill_job import hilton_plan

    queue = f"none-{uuid.uuid4()}"  # no worker: the backfill stays running, holding its locks
    jobs = PurgeJobService(temporal_env.client, demo.pool, demo.config, queue)
    backfill = new_job_id("backfill")
    await jobs.start_backfill(hilton_plan(demo), backfill, "U_CAROL")
    with pytest.raises(ConflictError, match=f"hilton on chat-prod is held by job {backfill}"):
        await jobs.start_purge(plan_for(demo, "hilton"), new_job_id("purge"), "U_ALICE")
    await jobs.cancel(backfill)
    async with build_worker(temporal_env.client, queue, demo.deps):  # let the cancel finish, freeing hilton
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(jobs.result(backfill), timeout=60)
