"""Where a job's work runs: a purge's chunks on their cluster's task queue, and a job whose cluster's
queue has no worker saying so in its thread, then finishing once one starts (in-process workers with
their own Temporal identities, on the real dev server, the demo on chdb, the Slack stand-in)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bot.jobs.ids import job_workflow_id, new_job_id
from bot.jobs.records import JobRecords
from bot.monitor.service import Monitor
from bot.planning import PlanningService, PurgeRequest
from bot.purge.service import PurgeJobService
from bot.registry import CustomerRegistry
from bot.slack.outbox import Outbox
from bot.slack.poster import SlackPoster
from bot.standins.slack.emulator import SlackEmulator
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))

async def test_a_purges_chunks_run_on_their_clusters_queue(temporal_env: Any, make_demo: Any) -> None:
    """The job on the control queue, each chunk on a worker of its cluster's queue (in-process workers
    with their own identities: one polls only the control queue, one only the cluster's)."""
    demo = make_demo(scale=0.002, seed=41)
    control, usw2 = f"control-{uuid.uuid4().hex[:8]}", f"usw2-{uuid.uuid4().hex[:8]}"
    config = demo.config.model_copy(update={"clusters": tuple(
        c.model_copy(update={"task_queue": usw2}) if c.name == "voice-prod" else c for c in demo.config.clusters)})
    planning = PlanningService(config, CustomerRegistry.from_config(config), demo.pool, demo.lookup)
    plan = planning.plan_purge(PurgeRequest(("spirit",), RANGE), today=date(2026, 3, 1)).plan
    jobs = PurgeJobService(temporal_env.client, demo.pool, config, control, heartbeat_timeout_s=10)
    target = temporal_env.client.service_client.config.target_host
    near = await Client.connect(target, identity="control-worker")
    far = await Client.connect(target, identity="usw2-worker")
    job = new_job_id("purge")
    async with build_worker(near, control, ActivityDeps(config, demo.pool, demo.pool, demo.lookup)), \
            build_worker(far, usw2, ActivityDeps(config, demo.pool, demo.pool, demo.lookup)):
        await jobs.start_purge(plan, job, "U_ALICE", "C_OPS")
        await asyncio.wait_for(jobs.purge_result(job), timeout=120)
        progress = await jobs.purge_progress(job)
    chunks = progress.clusters["voice-prod"]
    assert progress.state == "done" and chunks and all(c.state == "done" for c in chunks)
    assert {c.worker for c in chunks} == {"usw2-worker"}
    history = await temporal_env.client.get_workflow_handle(job_workflow_id("purge", job)).fetch_history()
    scheduled = {e.activity_task_scheduled_event_attributes.activity_type.name:
                 e.activity_task_scheduled_event_attributes.task_queue.name for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    assert scheduled == {"purge_chunk": usw2, "release_locks": control}


async def test_a_job_whose_clusters_queue_has_no_worker_says_so_then_finishes_when_one_starts(
        temporal_env: Any, make_demo: Any) -> None:
    demo = make_demo(scale=0.002, seed=43)
    control, usw2 = f"control-{uuid.uuid4().hex[:8]}", f"usw2-{uuid.uuid4().hex[:8]}"
    config = demo.config.model_copy(update={
        "clusters": tuple(c.model_copy(update={"task_queue": usw2}) if c.name == "chat-prod" else c
                          for c in demo.config.clusters),
        "monitor": demo.config.monitor.model_copy(update={"no_worker_minutes": 0.05})})
    jobs = PurgeJobService(temporal_env.client, demo.pool, config, control, heartbeat_timeout_s=10)
    refs = [CustomerRef(name="hilton", cluster="chat-prod")]
    volumes = [DayVolume(customer="hilton", day=d, conversations=100) for d in RANGE.each_day()]
    plan = plan_backfill(volumes, refs, RANGE, config.windows, config.throughput, 2, window_override=10)
    deps = ActivityDeps(config, demo.pool, demo.pool, demo.lookup)
    with SlackEmulator(signing_secret="s", bot_token="xoxb-fleet") as emu:
        emu.add_user("U_ALICE", "alice")
        emu.add_channel("C_OPS", "ops")
        web = AsyncWebClient(token="xoxb-fleet", base_url=emu.api_url, retry_handlers=[])
        outbox = Outbox(demo.pool)
        monitor = Monitor(demo.pool, jobs, outbox, config, lambda: datetime.now(UTC))
        poster = SlackPoster(outbox, web, per_channel_interval_s=0.02)
        job = new_job_id("backfill")

        async def tick_until(done: Any, limit: float) -> list[str]:
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                await monitor.tick()
                while await poster.run_once():
                    pass
                thread = [m.text for m in emu.thread("C_OPS", ts)]
                if done(thread):
                    return thread
                await asyncio.sleep(0.5)
            raise AssertionError(f"not seen in {limit} s: {[m.text for m in emu.thread('C_OPS', ts)]}")

        async with build_worker(temporal_env.client, control, deps):  # nobody polls the cluster's queue
            posted = await web.chat_postMessage(channel="C_OPS", text=f"Backfill {job}")
            ts = str(posted["ts"])
            await jobs.start_backfill(plan, job, "U_ALICE", "C_OPS")
            await asyncio.to_thread(JobRecords(demo.pool).set_message, job, "status", "C_OPS", ts)
            thread = await tick_until(lambda t: any(usw2 in m for m in t), 60)
            assert [m for m in thread if usw2 in m] == [f":warning: no worker on {usw2} for 1 min: the job waits until"
                                                        f" one polls it (`shepherd worker --queues {usw2}`)"]
            assert not any(control in m for m in thread)  # the control queue has its worker
            assert (await jobs.progress(job)).state == "running"
            async with build_worker(temporal_env.client, usw2, deps):
                thread = await tick_until(lambda t: any("done:" in m for m in t), 90)
        assert sum(usw2 in m for m in thread) == 1  # said once
        assert emu.contract_violations == []
