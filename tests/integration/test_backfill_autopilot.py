"""`--parallel auto` on a real Temporal dev server (embedded Postgres, chdb demo): windows whose rates
follow a contended resource, the job finding the resource's best N by itself, each change posted once
in the job's thread with its reason and figures, and `throttle` taking over until `throttle JOB auto`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import AutopilotSettings
from bot.errors import UserInputError
from bot.jobs.ids import new_job_id
from bot.purge.service import PurgeJobService
from bot.standins.slack.emulator import SlackEmulator
from bot.temporal.worker import build_worker
from commands.models import CustomerRef, DateRange, DayVolume, Throughput
from commands.schedule import plan_backfill
from tests.integration import contended_window as contended
from tests.integration.test_monitor import TOKEN, Rig, drive, flush

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))  # 4 windows of 5 days per customer
PILOT = AutopilotSettings(floor=1, start=2, hold_s=3.0, settle_s=1.0, interval_s=0.5)


@asynccontextmanager
async def autopilot_rig(temporal_env: Any, make_demo: Any, max_parallel: int = 8,
                        continue_after_events: int = 5_000) -> AsyncIterator[Rig]:
    demo = make_demo(scale=0.002)
    queue = f"autopilot-{uuid.uuid4()}"
    backfill = demo.config.backfill.model_copy(update={
        "window_workflow": "ContendedWindow", "window_task_queue": queue, "window_input_mapping": contended.MAPPING,
        "max_parallel": max_parallel, "parallel": "auto", "autopilot": PILOT,
        "continue_after_events": continue_after_events})
    config = demo.config.model_copy(update={"backfill": backfill,
                                            "throughput": Throughput(low=3600 * 100, high=3600 * 150)})
    jobs = PurgeJobService(temporal_env.client, demo.pool, config, queue, heartbeat_timeout_s=60)
    contended.RESOURCE.running = 0
    with SlackEmulator(signing_secret="s", bot_token=TOKEN) as emu:
        emu.add_user("U_ALICE", "alice")
        emu.add_channel("C_OPS", "ops")
        worker = build_worker(temporal_env.client, queue, demo.deps, extra_workflows=[contended.ContendedWindow],
                              extra_activities=[contended.contended_reindex],
                              heartbeat_throttle=timedelta(seconds=0.2))
        async with worker:
            from bot.jobs.records import JobRecords
            from bot.slack.outbox import Outbox

            yield Rig(emu, jobs, JobRecords(demo.pool), Outbox(demo.pool), config, demo.pool, demo.lookup)
        assert emu.contract_violations == []


async def start(rig: Rig, customers: int, per_day: int) -> tuple[str, str]:
    names = [f"cust-{i:02d}" for i in range(customers)]
    volumes = [DayVolume(customer=c, day=d, conversations=per_day) for c in names for d in RANGE.each_day()]
    plan = plan_backfill(volumes, [CustomerRef(name=c, cluster="chat-prod") for c in names], RANGE,
                         rig.config.windows, rig.config.throughput, 4, window_override=5)
    job = new_job_id("backfill")
    posted = await AsyncWebClient(token=TOKEN, base_url=rig.emu.api_url).chat_postMessage(channel="C_OPS", text=job)
    await rig.jobs.start_backfill(plan, job, "U_ALICE", "C_OPS")  # no --parallel: the configuration says auto
    await asyncio.to_thread(rig.records.set_message, job, "status", "C_OPS", posted["ts"])
    return job, str(posted["ts"])


async def test_auto_finds_the_contended_resources_best_n_and_tells_the_thread(temporal_env: Any,
                                                                            make_demo: Any) -> None:
    async with autopilot_rig(temporal_env, make_demo) as rig:
        job, ts = await start(rig, customers=7, per_day=80)  # 28 windows of 400 conversations
        first = await rig.jobs.progress(job)
        assert first.autopilot and first.parallel == PILOT.start
        peak = 0

        async def done() -> bool:
            nonlocal peak
            peak = max(peak, contended.RESOURCE.running)
            return (await rig.jobs.progress(job)).state == "done"

        monitor, poster = rig.monitor(), rig.poster()
        await drive(monitor, poster, done, every=0.3, limit=150)
        await drive(monitor, poster, done)  # one more tick: what happened since the last one is posted

        async def charted() -> bool:
            return any(m.files for m in rig.emu.thread("C_OPS", ts))
        await drive(monitor, poster, charted, every=0.2, limit=30)
        await flush(rig, poster)
        final = await rig.jobs.progress(job)
        status = str(rig.emu.message("C_OPS", ts).blocks)
        # the story of N in a PNG, uploaded once in the thread under the summary
        replies = rig.emu.thread("C_OPS", ts)
        charts = [(i, f) for i, m in enumerate(replies) for f in m.files]
        summary_at = next(i for i, m in enumerate(replies) if m.text.startswith(f":white_check_mark: Backfill {job}"))
        png = rig.emu.file_bytes(charts[0][1]["id"]) if charts else b""
    assert len(charts) == 1 and charts[0][0] > summary_at, [(m.text, m.files) for m in replies]
    assert charts[0][1]["title"] == f"{job}: planned vs actual per window, N over time"
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    summary = str(replies[summary_at].blocks)
    assert "*Parallelism*\\n2 -> 3 -> 5" in summary and "(autopilot)" in summary, summary
    assert "windows within their estimate" in summary, summary
    assert f"{final.parallel} at once (autopilot)" in status, status
    changes = [c for c in final.parallel_changes if c.by == "autopilot"]
    path = [(c.from_n, c.to_n) for c in changes]
    assert path[0] == (2, 3) and path[1] == (3, 5), path  # rising while the summed rate rises
    assert final.parallel == contended.RESOURCE.knee, path  # settled where the resource gives the most
    assert all(1 <= c.to_n <= 8 for c in changes) and peak <= 5
    times = [datetime.fromisoformat(c.at) for c in changes]
    assert all((b - a).total_seconds() >= PILOT.hold_s for a, b in zip(times, times[1:], strict=False))
    thread = rig.thread(ts)
    for c in changes:  # each change once, with its reason and the figures behind it
        said = [t for t in thread if f"autopilot: {c.from_n} -> {c.to_n} windows at once" in t]
        assert len(said) == 1 and "/h at N=" in said[0] and "/h per window" in said[0], (c, said)
    assert "rising: aggregate" in thread[[i for i, t in enumerate(thread) if "2 -> 3" in t][0]]


async def test_throttle_takes_over_until_throttle_auto(temporal_env: Any, make_demo: Any) -> None:
    async with autopilot_rig(temporal_env, make_demo) as rig:
        job, _ = await start(rig, customers=6, per_day=400)  # long windows: the job outlives the test

        async def first_change() -> Any:
            p = await rig.jobs.progress(job)
            return p if any(c.by == "autopilot" for c in p.parallel_changes) else None

        for _ in range(200):
            if await first_change():
                break
            await asyncio.sleep(0.1)
        await rig.jobs.throttle(job, 1)
        held = await rig.jobs.progress(job)
        for _ in range(50):
            if not held.autopilot:
                break
            await asyncio.sleep(0.1)
            held = await rig.jobs.progress(job)
        assert not held.autopilot and held.parallel == 1
        autos = sum(c.by == "autopilot" for c in held.parallel_changes)
        await asyncio.sleep(PILOT.hold_s + 2)  # longer than the hold: an autopilot would have moved
        still = await rig.jobs.progress(job)
        assert still.parallel == 1 and sum(c.by == "autopilot" for c in still.parallel_changes) == autos
        await rig.jobs.autopilot(job)
        back = await rig.jobs.progress(job)
        assert back.autopilot and back.parallel_changes[-1].reason == "autopilot on"
        await rig.jobs.cancel(job)
        await rig.jobs.wait(job)
        with pytest.raises(UserInputError, match="is not running"):
            await rig.jobs.autopilot(job)


async def test_auto_goes_on_after_the_job_continues_as_new(temporal_env: Any, make_demo: Any) -> None:
    async with autopilot_rig(temporal_env, make_demo, continue_after_events=150) as rig:
        job, ts = await start(rig, customers=5, per_day=80)  # 20 windows: past 150 events in its first run
        handle = rig.jobs.client.get_workflow_handle(f"backfill-job:{job}")
        first_run = (await handle.describe()).run_id

        async def done() -> bool:
            return (await rig.jobs.progress(job)).state == "done"

        monitor, poster = rig.monitor(), rig.poster()
        await drive(monitor, poster, done, every=0.3, limit=150)
        await drive(monitor, poster, done)  # one more tick: what happened since the last one is posted

        async def charted() -> bool:
            return any(m.files for m in rig.emu.thread("C_OPS", ts))
        await drive(monitor, poster, charted, every=0.2, limit=30)
        await flush(rig, poster)
        final = await rig.jobs.progress(job)
        assert (await handle.describe()).run_id != first_run, "the job continued as new"
    assert final.autopilot and all(w.state == "done" for w in final.windows)
    changes = [c for c in final.parallel_changes if c.by == "autopilot"]
    assert changes and [c.seq for c in final.parallel_changes] == list(range(1, len(final.parallel_changes) + 1))
    thread = rig.thread(ts)
    for c in changes:  # the changes made before the continue-as-new are carried, and each is posted once
        assert sum(f"autopilot: {c.from_n} -> {c.to_n} windows at once. {c.reason.split('. ', 1)[1]}" in t
                   for t in thread) == 1, (c, thread)
