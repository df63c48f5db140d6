"""Shepherd's own BackfillWindow under control: cancel really stops writing; retry re-runs only failures."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.backfill.service import JobService
from bot.config import parse_config
from bot.embedded.demo import demo_config
from bot.jobs.ids import new_job_id
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))


@pytest.fixture(scope="module")
def demo(make_demo: Any) -> Any:
    return make_demo(scale=0.002, seed=31)


def config_with(env: Any, backfill: dict[str, Any], broken_cluster: str | None = None) -> Any:
    raw = demo_config(env.spec, db_prefix=env.prefix)
    raw["backfill"] = backfill
    for cluster in raw["clusters"]:
        if cluster["name"] == broken_cluster:
            for region in cluster["regions"]:
                region["database"] = env.prefix + "missing"
    return parse_config(raw, "test config")


def deps_for(env: Any, config: Any) -> ActivityDeps:
    lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: env.chdb), config.lookup)
    return ActivityDeps(config, env.pool, env.pool, lookup)


def make_plan(env: Any, customers: list[CustomerRef], rng: DateRange, window: int, parallel: int) -> Any:
    with env.pool.connection() as conn:
        rows = conn.execute(
            "SELECT customer_id, created_at::date, count(*) FROM scorecards WHERE customer_id = ANY(%s)"
            " AND scorecard_type > 3 AND created_at >= %s AND created_at < %s + 1 GROUP BY 1, 2",
            ([c.name for c in customers], rng.start, rng.end)).fetchall()
    volumes = [DayVolume(customer=c, day=d, conversations=n) for c, d, n in rows]
    return plan_backfill(volumes, customers, rng, env.config.windows, env.config.throughput, parallel,
                         window_override=window)


def ch_rows(env: Any, customer: str, cluster: str) -> tuple[int, int]:
    ch = env.ch(cluster)
    cards = ch.query(f"SELECT count() FROM `{ch.database}`.scorecards WHERE customer_id = {{c:String}}",
                     {"c": customer})
    scores = ch.query(f"SELECT count() FROM `{ch.database}`.scores WHERE customer_id = {{c:String}}", {"c": customer})
    return cards[0][0], scores[0][0]


def job_row(env: Any, job: str) -> tuple[Any, ...]:
    with env.pool.connection() as conn:
        row = conn.execute("SELECT state, finished_at IS NOT NULL, error FROM shepherd.jobs WHERE id = %s",
                           (job,)).fetchone()
        locks = conn.execute("SELECT count(*) FROM shepherd.locks WHERE job_id = %s", (job,)).fetchone()
    assert row is not None and locks is not None
    return (*row, locks[0])


async def test_cancel_stops_every_window_and_nothing_is_written_after(temporal_env: Any, demo: Any) -> None:
    config = config_with(demo, {"pause_between_days_s": 1.0})  # a window lasts 4 s or more
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(temporal_env.client, demo.pool, config, queue, heartbeat_timeout_s=2)
    plan = make_plan(demo, [CustomerRef(name="hilton", cluster="chat-prod")], RANGE, 5, parallel=2)
    async with build_worker(temporal_env.client, queue, deps_for(demo, config)):
        job = new_job_id("backfill")
        await jobs.start_backfill(plan, job, "U_ALICE", "C_OPS")
        for _ in range(300):
            progress = await jobs.progress(job)
            live = [w for w in progress.windows if w.state == "running" and w.done > 0 and w.day
                    and w.day < w.end]
            if len(live) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(live) == 2, progress
        assert all(w.region == "local" and w.total > 0 for w in live)  # heartbeat details merged from describe()
        await jobs.cancel(job)
        final = await asyncio.wait_for(jobs.wait(job), timeout=60)
        after_cancel = ch_rows(demo, "hilton", "chat-prod")
        await asyncio.sleep(2.5)
        assert ch_rows(demo, "hilton", "chat-prod") == after_cancel  # nothing is still writing
        for w in final.windows:
            if w.workflow_id:
                desc = await temporal_env.client.get_workflow_handle(w.workflow_id).describe()
                assert desc.status != WorkflowExecutionStatus.RUNNING
                assert not desc.raw_description.pending_activities
    assert final.state == "cancelled"
    states = {w.key: w.state for w in final.windows}
    assert all(states[w.key] == "cancelled" for w in live)  # stopped mid-window
    assert set(states.values()) <= {"done", "cancelled"}  # only windows finished before the cancel are done
    assert job_row(demo, job) == ("cancelled", True, None, 0)


async def test_retry_reruns_only_the_failed_windows(temporal_env: Any, demo: Any) -> None:
    rng = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))
    customers = [CustomerRef(name="hilton", cluster="chat-prod"), CustomerRef(name="care-oregon", cluster="us-west-2")]
    plan = make_plan(demo, customers, rng, 10, parallel=4)
    good = config_with(demo, {"max_attempts": 2})
    broken = config_with(demo, {"max_attempts": 2}, broken_cluster="us-west-2")
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(temporal_env.client, demo.pool, good, queue, heartbeat_timeout_s=3)
    job = new_job_id("backfill")
    async with build_worker(temporal_env.client, queue, deps_for(demo, broken)):
        await jobs.start_backfill(plan, job, "U_ALICE")
        first = await asyncio.wait_for(jobs.wait(job), timeout=120)
    assert first.state == "failed" and first.run == 1
    failed = {w.key for w in first.windows if w.state == "failed"}
    assert failed == {w.key for w in first.windows if w.customer == "care-oregon"} and len(failed) == 2
    assert all("missing" in (w.last_failure or "") for w in first.windows if w.key in failed)
    assert all(w.state == "done" for w in first.windows if w.customer == "hilton")
    state, finished, error, held = job_row(demo, job)
    assert (state, finished, held) == ("failed", True, 0) and "care-oregon" in (error or "")
    hilton_runs = {w.key: (await temporal_env.client.get_workflow_handle(w.workflow_id or "").describe()).run_id
                   for w in first.windows if w.customer == "hilton"}

    async with build_worker(temporal_env.client, queue, deps_for(demo, good)):
        assert await jobs.retry(job, failed_only=True) == 2
        second = await asyncio.wait_for(jobs.wait(job), timeout=120)
    assert second.state == "done" and second.run == 2
    assert {w.key for w in second.windows} == failed and all(w.state == "done" for w in second.windows)
    for w in first.windows:
        if w.customer == "hilton":  # not started again
            desc = await temporal_env.client.get_workflow_handle(w.workflow_id or "").describe()
            assert desc.run_id == hilton_runs[w.key]
    lo, hi = rng.start, rng.end
    for customer, cluster in (("hilton", "chat-prod"), ("care-oregon", "us-west-2")):
        ch = {d: n for d, n in demo.ch_counts(customer, cluster, appeal=False).items() if lo <= d <= hi}
        pg = {d: n for d, n in demo.pg_counts(customer).items() if lo <= d <= hi}
        assert ch == pg, customer
        assert not {d for d in demo.ch_counts(customer, cluster, appeal=True) if lo <= d <= hi}
    assert job_row(demo, job)[:2] == ("done", True)
    handle = temporal_env.client.get_workflow_handle(f"backfill-job:{job}")
    last_run = (await handle.describe()).run_id
    assert await jobs.start_backfill(plan, job, "U_ALICE") == job  # starting a finished job again runs nothing
    assert (await handle.describe()).run_id == last_run
