"""A job of limits.max_windows (10,000) windows on the real Temporal dev server: its input stays small,
the SDK never warns of a payload's size, its history continues as new before Temporal's event limit,
and its progress answers for every window."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from bot.adapters.postgres import apply_migrations, make_pool
from bot.backfill.service import JobService, window_specs
from bot.backfill.workflows import BackfillJob
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.jobs.ids import job_workflow_id, new_job_id
from bot.temporal.deps import ActivityDeps
from bot.temporal.models import BackfillJobInput, BackfillProgressTable
from bot.temporal.worker import build_worker
from commands.models import BackfillPlan, CustomerBackfillPlan, DateRange, Window
from commands.schedule import plan_hash
from tests.integration.tiny_window import TinyWindow

pytestmark = pytest.mark.asyncio(loop_scope="session")
WINDOWS = int(os.environ.get("SHEPHERD_LARGE_JOB_WINDOWS", "10000"))
BUDGET_S = float(os.environ.get("SHEPHERD_LARGE_JOB_BUDGET_S", "120"))  # then it is cancelled
WARN_BYTES = 512 * 1024
FIRST = date(2025, 1, 1)


def large_plan(config: Any, windows: int, customers: int = 100) -> BackfillPlan:
    """`windows` one-day windows over `customers` customers (as a plan of --window 1d over a long range)."""
    clusters = [c.name for c in config.clusters]
    per = -(-windows // customers)
    plans = []
    for c in range(customers):
        name, cluster = f"customer-{c:03d}", clusters[c % len(clusters)]
        days = range(min(per, windows - c * per))
        ws = tuple(Window(customer=name, cluster=cluster, start=FIRST + timedelta(days=d),
                          end=FIRST + timedelta(days=d), conversations=1000 + (c * 7919 + d * 104729) % 90000,
                          est_hours=(0.4, 1.7)) for d in days)
        if ws:
            plans.append(CustomerBackfillPlan(customer=name, cluster=cluster, daily_avg=5000.0, window_days=1,
                                              rule="--window 1d", windows=ws))
    plan = BackfillPlan(range=DateRange(start=FIRST, end=FIRST + timedelta(days=per - 1)), customers=tuple(plans),
                        parallel=50, sequential_hours=(1.0, 2.0), makespan_hours=(1.0, 2.0),
                        lower_bound_hours=(1.0, 2.0), plan_hash="")
    return plan.model_copy(update={"plan_hash": plan_hash(plan)})


class CoreLogs(logging.Handler):
    """The Temporal SDK core's log lines (where its payload-size warning goes)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + " " + str(getattr(record, "__dict__", {}).get("temporal_log", "")))

    def payload_warnings(self) -> list[str]:
        return [line for line in self.lines if "TMPRL1103" in line]  # the SDK's payload-limit code


async def forwarding_client(address: str, logs: CoreLogs) -> Client:
    logger = logging.getLogger(f"test.temporal_core.{uuid.uuid4().hex[:6]}")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(logs)
    runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="WARN"),
        forwarding=LogForwardingConfig(logger=logger))))
    return await Client.connect(address, runtime=runtime)


async def test_a_10000_window_job_stays_small_and_answers_for_every_window(temporal_env: Any, pg_dsn: str) -> None:
    logs = CoreLogs()
    client = await forwarding_client(temporal_env.client.service_client.config.target_host, logs)
    spec = DemoSpec(scale=0.002, seed=7)
    base = parse_config(demo_config(spec, db_prefix="large_"), "demo config")
    config = base.model_copy(update={"backfill": base.backfill.model_copy(update={
        "window_workflow": "TinyWindow", "max_parallel": 50})})
    pool = make_pool(pg_dsn, max_size=4)
    apply_migrations(pool)
    queue = f"q-{uuid.uuid4()}"
    jobs = JobService(client, pool, config, queue)
    plan = large_plan(config, WINDOWS)
    assert len(plan.windows) == WINDOWS

    # The SDK does warn of a payload over 512 KB on this client: the old input (a dataclass a window) is one.
    old = BackfillJobInput(job_id="b-old", plan_hash=plan.plan_hash, windows=window_specs(large_plan(config, 10_000)),
                           parallel=1)
    assert jobs.input_bytes(old) > 3 * WARN_BYTES
    await client.start_workflow("BackfillJob", old, id=f"old-{queue}", task_queue=f"none-{queue}")
    await client.get_workflow_handle(f"old-{queue}").terminate("only its start was needed")
    for _ in range(50):
        if logs.payload_warnings():
            break
        await asyncio.sleep(0.1)
    assert logs.payload_warnings(), "the SDK warns of a large payload on this client"
    logs.lines.clear()

    job = new_job_id("backfill")
    began = time.monotonic()
    async with build_worker(client, queue, ActivityDeps(config, pool, pool, None),  # type: ignore[arg-type]
                            extra_workflows=[TinyWindow]):
        await jobs.start_backfill(plan, job, requester="U_ALICE", channel="C_OPS", parallel=50)
        handle = client.get_workflow_handle(job_workflow_id("backfill", job))
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        size = started.input.ByteSize()
        assert size < WARN_BYTES / 2, f"the job's input is {size} bytes"
        progress = await jobs.progress(job)
        assert len(progress.windows) == WINDOWS and {w.state for w in progress.windows} <= {"pending", "running"}
        progress, table_bytes = await watch(jobs, client, job, time.monotonic() + BUDGET_S)
        if progress.state != "done":  # the budget ran out first: the job still answers for every window
            assert len(progress.windows) == WINDOWS and sum(w.state == "done" for w in progress.windows) >= 300
            assert {w.state for w in progress.windows} <= {"done", "running", "pending"}
            await jobs.cancel(job)
            progress = await jobs.wait(job)
        took = time.monotonic() - began
    done = sum(w.state == "done" for w in progress.windows)
    runs, largest, events, replay_s = await history_runs(client, job_workflow_id("backfill", job))
    print(f"{done} of {WINDOWS} windows done in {took:.0f} s: {runs} run(s), {events} history events"
          f" ({events / max(done, 1):.1f} a window done), the largest run {largest} (replayed in {replay_s:.1f} s);"
          f" input {size} bytes, progress {table_bytes} bytes")
    # Temporal fails a history at 51,200 events; the job continues as new past 5,000 (and its running windows)
    assert largest < config.backfill.continue_after_events + 1_000
    assert table_bytes < WARN_BYTES
    assert not logs.payload_warnings(), logs.payload_warnings()
    assert len(progress.windows) == WINDOWS
    if progress.state == "done":
        assert all(w.state == "done" for w in progress.windows)
        assert sum(w.done for w in progress.windows) == sum(w.conversations for w in plan.windows)
    else:
        assert progress.state == "cancelled"
    assert runs >= 1 + done // 2_000  # about 3.8 events a window: a run past 5,000 events continues as new
    with pool.connection() as conn:
        assert conn.execute("SELECT state FROM shepherd.jobs WHERE id = %s", (job,)).fetchone() == (progress.state,)
        assert conn.execute("SELECT count(*) FROM shepherd.locks WHERE job_id = %s", (job,)).fetchone() == (0,)
    pool.close()


async def watch(jobs: JobService, client: Client, job: str, until: float) -> tuple[Any, int]:
    """Follow the job until it is done or `until` (monotonic); its progress, and the largest progress
    query answer seen (bytes, as the SDK's default data converter encodes it)."""
    largest = 0
    while True:
        progress = await jobs.progress(job)
        table = await client.get_workflow_handle(job_workflow_id("backfill", job)).query(
            "progress_table", result_type=BackfillProgressTable)
        largest = max(largest, client.data_converter.payload_converter.to_payloads([table])[0].ByteSize())
        if progress.state == "done" or time.monotonic() > until:
            return progress, largest
        await asyncio.sleep(5)


async def history_runs(client: Client, workflow_id: str) -> tuple[int, int, int, float]:
    """(runs, history events of the largest run, events of all runs, seconds to replay the largest run)
    of a workflow that continued as new (a worker replays a run it no longer holds in its cache)."""
    runs, total, run_id, largest = 0, 0, None, None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs, total = runs + 1, total + len(history.events)
        if largest is None or len(history.events) > len(largest.events):
            largest = history
        first = history.events[0].workflow_execution_started_event_attributes
        if not first.continued_execution_run_id:
            break
        run_id = first.continued_execution_run_id
    began = time.monotonic()
    await Replayer(workflows=[BackfillJob]).replay_workflow(largest)
    return runs, len(largest.events), total, time.monotonic() - began


async def test_a_plan_whose_job_would_carry_too_much_is_refused_before_anything_starts(
        temporal_env: Any, pg_dsn: str) -> None:
    from bot.errors import UserInputError

    base = parse_config(demo_config(DemoSpec(scale=0.002, seed=7), db_prefix="huge_"), "demo config")
    config = base.model_copy(update={"limits": base.limits.model_copy(update={"max_windows": 40_000})})
    pool = make_pool(pg_dsn, max_size=2)
    apply_migrations(pool)
    jobs = JobService(temporal_env.client, pool, config, f"q-{uuid.uuid4()}")
    job = new_job_id("backfill")
    with pytest.raises(UserInputError, match=r"30,000 windows would make the job's progress [\d,]+ KB, more than the"
                                             r" 480 KB a job may carry: split the customers over two jobs"):
        await jobs.start_backfill(large_plan(config, 30_000, customers=300), job, requester="U_ALICE", parallel=4)
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM shepherd.jobs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM shepherd.locks").fetchone() == (0,)
    assert not await jobs.workflow_exists(job_workflow_id("backfill", job))
    pool.close()


async def test_progress_from_a_worker_that_predates_progress_table(temporal_env: Any) -> None:
    from temporalio.worker import Worker

    from tests.integration.old_backfill_job import OldBackfillJob

    queue, job = f"q-{uuid.uuid4()}", new_job_id("backfill")
    config = parse_config(demo_config(DemoSpec(scale=0.002, seed=7), db_prefix="old_"), "demo config")
    jobs = JobService(temporal_env.client, None, config, queue)
    async with Worker(temporal_env.client, task_queue=queue, workflows=[OldBackfillJob]):
        handle = await temporal_env.client.start_workflow("BackfillJob", {"job_id": job},
                                                          id=job_workflow_id("backfill", job), task_queue=queue)
        progress = await jobs.progress(job)
        assert progress.state == "running" and [w.customer for w in progress.windows] == ["hilton"]
        await handle.terminate("test done")
