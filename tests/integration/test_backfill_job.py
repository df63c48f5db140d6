"""Backfill jobs on the real Temporal dev server, embedded Postgres and chdb."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, date
from typing import Any

import pytest

from bot.backfill.service import JobService
from bot.errors import ConflictError, UserInputError
from bot.jobs.ids import new_job_id
from bot.temporal.worker import build_worker
from commands.models import DateRange
from commands.schedule import plan_backfill

pytestmark = pytest.mark.asyncio(loop_scope="session")
SEED = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))


@pytest.fixture(scope="module")
def demo(make_demo: Any) -> Any:
    return make_demo(scale=0.002, seed=21)


def hilton_plan(env: Any, parallel: int = 4) -> Any:
    from bot.planning import PlanningService
    from bot.registry import CustomerRegistry

    registry = CustomerRegistry.from_config(env.config)
    planning = PlanningService(env.config, registry, env.pool, env.lookup)
    customers = registry.resolve(("hilton",))
    volumes = planning.backfill_volumes(customers, SEED)
    return plan_backfill(volumes, customers, SEED, env.config.windows, env.config.throughput, parallel)


async def test_hilton_backfill_matches_postgres_per_day(temporal_env: Any, demo: Any) -> None:
    plan = hilton_plan(demo)
    assert [len(c.windows) for c in plan.customers] == [11] and plan.customers[0].window_days == 5
    assert demo.ch_counts("hilton", "chat-prod", appeal=True), "the demo starts with appeal rows in ClickHouse"
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(temporal_env.client, demo.pool, demo.config, queue, heartbeat_timeout_s=10)
    async with build_worker(temporal_env.client, queue, demo.deps):
        job = new_job_id("backfill")
        await jobs.start_backfill(plan, job, requester="U_ALICE", channel="C_OPS")
        await jobs.start_backfill(plan, job, requester="U_ALICE", channel="C_OPS")  # a double click runs once
        windows = await asyncio.wait_for(jobs.result(job), timeout=240)
        progress = await jobs.progress(job)
    assert progress.state == "done"
    assert len(windows) == 11 and all(w["state"] == "done" for w in windows)
    assert all(w.attempt == 1 for w in progress.windows)
    assert demo.ch_counts("hilton", "chat-prod", appeal=False) == demo.pg_counts("hilton")
    assert demo.ch_counts("hilton", "chat-prod", appeal=True) == {}
    with demo.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM shepherd.locks WHERE job_id = %s", (job,)).fetchone() == (0,)


async def test_bad_plans_are_refused_before_anything_starts(temporal_env: Any, demo: Any) -> None:
    plan = hilton_plan(demo)
    jobs = JobService(temporal_env.client, demo.pool, demo.config, "unused-queue")
    empty = plan.model_copy(update={"customers": ()})
    with pytest.raises(UserInputError, match="no windows"):
        await jobs.start_backfill(empty, new_job_id("backfill"), "U_ALICE")
    first = plan.customers[0]
    w0, w1 = first.windows[0], first.windows[1]
    overlapping = replace(w1, start=w0.end)
    bad = plan.model_copy(update={"customers": (first.model_copy(update={"windows": (w0, overlapping)}),)})
    with pytest.raises(UserInputError, match="overlap"):
        await jobs.start_backfill(bad, new_job_id("backfill"), "U_ALICE")
    unknown = plan.model_copy(update={"customers": (first.model_copy(update={
        "windows": tuple(replace(w, cluster="mars") for w in first.windows)}),)})
    with pytest.raises(UserInputError, match="unknown cluster mars"):
        await jobs.start_backfill(unknown, new_job_id("backfill"), "U_ALICE")
    with demo.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM shepherd.locks").fetchone() == (0,)


async def test_second_job_on_a_locked_customer_is_refused_naming_the_holder(temporal_env: Any, demo: Any) -> None:
    plan = hilton_plan(demo, parallel=1)
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(temporal_env.client, demo.pool, demo.config, queue, heartbeat_timeout_s=10)
    first = new_job_id("backfill")
    await jobs.start_backfill(plan, first, "U_ALICE")  # no worker yet: it stays running, holding its locks
    with pytest.raises(ConflictError, match=f"held by job {first}"):
        await jobs.start_backfill(plan, new_job_id("backfill"), "U_CAROL")
    await jobs.cancel(first)
    async with build_worker(temporal_env.client, queue, demo.deps):
        with pytest.raises(Exception):  # noqa: B017 - the job ends cancelled
            await asyncio.wait_for(jobs.result(first), timeout=60)
        again = new_job_id("backfill")  # the cancelled job released hilton: a new job may take it
        await jobs.start_backfill(plan, again, "U_CAROL")
        await jobs.cancel(again)
        with pytest.raises(Exception):  # noqa: B017 - ends cancelled, releasing its locks
            await asyncio.wait_for(jobs.result(again), timeout=60)


async def test_at_waits_on_a_durable_timer(temporal_env: Any, demo: Any) -> None:
    from datetime import datetime, timedelta

    plan = hilton_plan(demo, parallel=2)
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(temporal_env.client, demo.pool, demo.config, queue, heartbeat_timeout_s=10)
    async with build_worker(temporal_env.client, queue, demo.deps):
        job = new_job_id("backfill")
        later = datetime.now(UTC) + timedelta(hours=3)
        await jobs.start_backfill(plan, job, "U_ALICE", start_at=later)
        await asyncio.sleep(1.0)
        progress = await jobs.progress(job)
        assert progress.state == "waiting" and progress.start_at == later.isoformat()
        assert all(w.state == "pending" for w in progress.windows)
        await jobs.cancel(job)
        with pytest.raises(Exception):  # noqa: B017 - ends cancelled
            await asyncio.wait_for(jobs.result(job), timeout=60)
