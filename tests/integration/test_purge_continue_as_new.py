"""A purge of thousands of small chunks on the real Temporal dev server and chdb: its history passes the
event threshold, so it continues as new (several times), carrying which chunks are done, what they
deleted and pause; the job's progress, pause and resume work across runs and it ends done with every
appeal row gone and nothing else touched."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date
from typing import Any

import pytest

from bot.jobs.ids import job_workflow_id, new_job_id
from bot.planning import PlanningService, PurgeRequest
from bot.purge.service import PurgeJobService
from bot.registry import CustomerRegistry
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker
from commands.models import DateRange

pytestmark = pytest.mark.asyncio(loop_scope="session")
CAP = int(os.environ.get("SHEPHERD_TEST_PURGE_CAP", "20"))  # rows per mutation: thousands of chunks
EVENTS = 2_000  # continue as new past this many history events (the default is 5,000)


@pytest.fixture(scope="module")
def demo(make_demo: Any) -> Any:
    return make_demo(scale=0.002, seed=43)


async def test_a_plan_of_thousands_of_chunks_continues_as_new_and_finishes(temporal_env: Any, demo: Any) -> None:
    config = demo.config.model_copy(update={
        "backfill": demo.config.backfill.model_copy(update={"continue_after_events": EVENTS}),
        "purge": demo.config.purge.model_copy(update={"max_rows_per_mutation": CAP})})
    planning = PlanningService(config, CustomerRegistry.from_config(config), demo.pool, demo.lookup)
    rng = DateRange(start=demo.spec.start, end=demo.spec.end)
    plan = planning.plan_purge(PurgeRequest(("oportun",), rng), today=date(2026, 3, 1)).plan
    chunks = plan.clusters[0].chunks
    assert len(chunks) == plan.mutations_lower_bound >= (3_000 if CAP <= 20 else 1)
    before_ok = demo.ch_counts("oportun", "us-east-2", appeal=False)

    queue = f"purge-can-{uuid.uuid4()}"
    jobs = PurgeJobService(temporal_env.client, demo.pool, config, queue, heartbeat_timeout_s=10)
    job = new_job_id("purge")
    handle = temporal_env.client.get_workflow_handle(job_workflow_id("purge", job))
    seen: dict[str, Any] = {}
    async with build_worker(temporal_env.client, queue, ActivityDeps(config, demo.pool, demo.pool, demo.lookup)):
        await jobs.start_purge(plan, job, "U_ALICE", "C_OPS")
        first_run = (await handle.describe()).run_id
        # pause across a continue-as-new: paused in a later run, it stays paused, nothing more runs
        for _ in range(1200):  # a query carries every chunk's state: not too often
            progress = await jobs.purge_progress(job)
            if progress.runs >= 2:
                break
            await asyncio.sleep(0.5)
        assert progress.runs >= 2, "the job never continued as new"
        await jobs.purge_pause(job)
        await asyncio.sleep(1.5)
        held = await jobs.purge_progress(job)
        await asyncio.sleep(1.5)
        still = await jobs.purge_progress(job)
        seen["paused"] = (held, still)
        await jobs.purge_resume(job)
        await asyncio.wait_for(jobs.purge_result(job), timeout=1200)
        progress = await jobs.purge_progress(job)
    held, still = seen["paused"]
    done = lambda p: sum(c.state == "done" for c in p.clusters["us-east-2"])  # noqa: E731
    assert held.state == still.state == "paused" and done(held) == done(still) < len(chunks)
    assert progress.state == "done" and progress.runs > 2
    assert (await handle.describe()).run_id != first_run
    states = progress.clusters["us-east-2"]
    assert all(s.state == "done" for s in states) and len(states) == len(chunks)
    assert [s.rows_deleted for s in states] == [c.rows for c in chunks]  # carried across every run
    assert all(s.worker for s in states)  # the summary can still say where each chunk ran
    assert sum(v for v in demo.ch_counts("oportun", "us-east-2", appeal=True).values() for v in v) == 0
    assert demo.ch_counts("oportun", "us-east-2", appeal=False) == before_ok
    history = await handle.fetch_history()  # the last run's history stays far below Temporal's 51,200
    assert len(history.events) < 2 * EVENTS
