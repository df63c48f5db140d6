"""Starts that cannot leave ghosts (issue 19): a job is `starting` until Temporal confirms its workflow; the
monitor (at start-up, then every tick for starting jobs) describes each open job's workflow and marks one
that has none, in its thread and in `/shepherd jobs`, and frees its locks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs import locks
from bot.jobs.ids import new_job_id
from bot.slack import job_blocks
from commands.models import CustomerRef, DayVolume
from commands.schedule import plan_backfill
from tests.integration.test_monitor import RANGE, TOKEN, Rig, monitor_rig


@pytest_asyncio.fixture(loop_scope="session")
async def rig(temporal_env: Any, make_demo: Any) -> AsyncIterator[Rig]:
    async with monitor_rig(temporal_env, make_demo) as made:
        yield made


async def _recorded(rig: Rig, state: str) -> tuple[str, str]:
    """A backfill job recorded in `state` with a status message and a lock, as a serve stopped between
    recording it and starting its workflow leaves it; its workflow was never started."""
    volumes = [DayVolume(customer="hilton", day=d, conversations=10) for d in RANGE.each_day()]
    plan = plan_backfill(volumes, [CustomerRef(name="hilton", cluster="chat-prod")], RANGE, rig.config.windows,
                         rig.config.throughput, 1, window_override=5)
    job = new_job_id("backfill")
    await asyncio.to_thread(rig.records.create, job, "backfill", state, "U_ALICE", "C_OPS", plan, {})
    web = AsyncWebClient(token=TOKEN, base_url=rig.emu.api_url)
    posted = await web.chat_postMessage(channel="C_OPS", text=f"Backfill {job}: running")
    await asyncio.to_thread(rig.records.set_message, job, "status", "C_OPS", posted["ts"])
    await asyncio.to_thread(locks.acquire, rig.pool, job, f"backfill-{job}", {("chat-prod", f"ghost-{job}")},
                            lambda _: True)
    return job, str(posted["ts"])


def _held(rig: Rig, job: str) -> int:
    with rig.pool.connection() as conn:
        return int(conn.execute("SELECT count(*) FROM shepherd.locks WHERE job_id = %s", (job,)).fetchone()[0])


async def test_a_job_recorded_but_never_started_is_marked_in_its_thread_and_the_job_list(rig: Rig) -> None:
    job, ts = await _recorded(rig, "starting")
    monitor, poster = rig.monitor(), rig.poster()
    await monitor.tick()  # the start-up sweep: a start this young may still be in flight, so it waits
    assert (await asyncio.to_thread(rig.records.get, job)).state == "starting"

    monitor.reconciler.grace_s = 0  # as if the grace period had passed
    await monitor.tick()
    while await poster.run_once():
        pass
    row = await asyncio.to_thread(rig.records.get, job)
    assert row.state == "did_not_start" and row.finished_at is not None
    assert "never started" in (row.error or "")
    said = [m.text for m in rig.emu.thread("C_OPS", ts)]
    assert any(f"{job} did not start" in t for t in said), said
    assert _held(rig, job) == 0
    listed = job_blocks.jobs_list(await asyncio.to_thread(rig.records.recent, 50), {})
    line = next(b["text"]["text"] for b in listed.as_kwargs()["blocks"] if job in str(b))
    assert "*did not start*" in line.split(job, 1)[1].split("\n")[0], line


async def test_a_running_job_without_a_workflow_is_lost_at_start_up(rig: Rig) -> None:
    job, ts = await _recorded(rig, "running")
    monitor, poster = rig.monitor(), rig.poster()
    await monitor.tick()  # the first tick checks every open job, however young
    while await poster.run_once():
        pass
    row = await asyncio.to_thread(rig.records.get, job)
    assert row.state == "lost" and "does not exist" in (row.error or "")
    assert any(f"{job} is lost" in m.text for m in rig.emu.thread("C_OPS", ts))
    assert _held(rig, job) == 0


async def test_a_started_job_is_running_and_a_confirmed_start_left_starting_is_repaired(rig: Rig) -> None:
    job, _ = await rig.start({"united-east": 100}, parallel=1)
    assert (await asyncio.to_thread(rig.records.get, job)).state == "running"
    await asyncio.to_thread(rig.records.set_state, job, "starting")  # stopped after the start, before the update
    monitor = rig.monitor()
    monitor.reconciler.grace_s = 0
    await monitor.tick()
    assert (await asyncio.to_thread(rig.records.get, job)).state == "running"
    await monitor.tick()  # a job whose workflow exists is left as it is
    assert (await asyncio.to_thread(rig.records.get, job)).state == "running"
    await rig.jobs.cancel(job)
    assert (await rig.jobs.wait(job)).state == "cancelled"
