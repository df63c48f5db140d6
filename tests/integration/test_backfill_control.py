"""Driving a running backfill: in-house window workflow, heartbeat keys, throttle, pause, retry, cancel."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from bot.backfill.service import JobService
from bot.jobs.ids import new_job_id
from bot.temporal.worker import build_worker
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill
from tests.integration import inhouse_workflow as inhouse

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))


@pytest.fixture(scope="module")
def demo(make_demo: Any) -> Any:
    return make_demo(scale=0.001, seed=41)


def inhouse_setup(env: Any) -> tuple[Any, str]:
    queue = f"inhouse-{uuid.uuid4()}"
    backfill = env.config.backfill.model_copy(update={
        "window_workflow": "InHouseBackfill", "window_task_queue": queue,
        "window_input_mapping": {"customerName": "customer", "from": "start", "to": "end"},
        "progress_done_key": "Done", "progress_total_key": "Total",
    })
    return env.config.model_copy(update={"backfill": backfill}), queue


def plan(env: Any, parallel: int) -> Any:
    volumes = [DayVolume(customer="hilton", day=d, conversations=100) for d in RANGE.each_day()]
    return plan_backfill(volumes, [CustomerRef(name="hilton", cluster="chat-prod")], RANGE, env.config.windows,
                         env.config.throughput, parallel, window_override=5)


async def wait_until(check: Any, timeout: float = 30) -> Any:
    for _ in range(int(timeout / 0.1)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_inhouse_workflow_throttle_pause_and_retry_failed_only(temporal_env: Any, demo: Any) -> None:
    config, inhouse_queue = inhouse_setup(demo)
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(temporal_env.client, demo.pool, config, queue)
    the_plan = plan(demo, parallel=1)
    failing = the_plan.windows[3].start.isoformat()
    inhouse.FAIL_ONCE.add(failing)
    inhouse.RUNS.clear()
    other = Worker(temporal_env.client, task_queue=inhouse_queue, workflows=[inhouse.InHouseBackfill],
                   activities=[inhouse.inhouse_reindex])
    async with build_worker(temporal_env.client, queue, demo.deps), other:
        job = new_job_id("backfill")
        await jobs.start_backfill(the_plan, job, "U_ALICE")

        async def running_with_beat() -> Any:
            p = await jobs.progress(job)
            live = [w for w in p.windows if w.state == "running" and w.done > 0]
            return p if live else None

        p = await wait_until(running_with_beat)
        (live,) = [w for w in p.windows if w.state == "running"]
        assert live.total == inhouse.STEPS and 0 < live.done <= inhouse.STEPS  # read through describe()

        await jobs.throttle(job, 3)

        async def three_running() -> bool:
            return sum(w.state == "running" for w in (await jobs.progress(job)).windows) == 3

        await wait_until(three_running)
        await jobs.pause(job)

        async def drained() -> Any:
            p = await jobs.progress(job)
            return p if p.state == "paused" and not any(w.state == "running" for w in p.windows) else None

        paused = await wait_until(drained)
        pending = sum(w.state == "pending" for w in paused.windows)
        await asyncio.sleep(1.0)
        assert sum(w.state == "pending" for w in (await jobs.progress(job)).windows) == pending > 0
        await jobs.resume(job)
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(jobs.result(job), timeout=120)
        done = await jobs.progress(job)
        assert [w.start for w in done.windows if w.state == "failed"] == [failing]
        assert "source replica lagging" in (next(w for w in done.windows if w.state == "failed").last_failure or "")

        assert await jobs.retry(job, failed_only=True) == 1
        await asyncio.wait_for(jobs.result(job), timeout=60)
        again = await jobs.progress(job)
    assert again.state == "done" and [w.start for w in again.windows] == [failing]
    assert inhouse.RUNS[failing] == 2
    assert all(n == 1 for start, n in inhouse.RUNS.items() if start != failing)
    assert len(inhouse.RUNS) == 11


async def test_cancel_really_stops_every_window(temporal_env: Any, demo: Any) -> None:
    config, inhouse_queue = inhouse_setup(demo)
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(temporal_env.client, demo.pool, config, queue)
    inhouse.RUNS.clear()
    other = Worker(temporal_env.client, task_queue=inhouse_queue, workflows=[inhouse.InHouseBackfill],
                   activities=[inhouse.inhouse_reindex])
    async with build_worker(temporal_env.client, queue, demo.deps), other:
        job = new_job_id("backfill")
        await jobs.start_backfill(plan(demo, parallel=2), job, "U_ALICE")

        async def two_running() -> bool:
            return sum(w.state == "running" for w in (await jobs.progress(job)).windows) == 2

        await wait_until(two_running)
        await jobs.cancel(job)
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(jobs.result(job), timeout=60)
        final = await jobs.progress(job)
        runs = sum(inhouse.RUNS.values())
        await asyncio.sleep(1.0)
        assert sum(inhouse.RUNS.values()) == runs  # nothing new started after the cancel
    assert final.state == "cancelled"
    assert not any(w.state in ("running", "pending") for w in final.windows)
    assert sum(w.state == "cancelled" for w in final.windows) >= 9
    with demo.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM shepherd.locks WHERE job_id = %s", (job,)).fetchone() == (0,)
