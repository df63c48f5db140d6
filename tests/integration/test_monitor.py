"""The monitor on a real Temporal dev server: status edits with the right percent and ETA, events once
each (window finished, stall, contention, job finished), and a restart that loses and repeats nothing."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.ids import new_job_id
from bot.jobs.records import JobRecords
from bot.monitor.job_end import JobEnd
from bot.monitor.service import Monitor
from bot.purge.service import PurgeJobService
from bot.slack.deps import SlackDeps
from bot.slack.job_flow import JobFlow
from bot.slack.outbox import Outbox
from bot.slack.poster import SlackPoster
from bot.standins.slack.emulator import SlackEmulator
from bot.temporal.worker import build_worker
from commands.models import CustomerRef, DateRange, DayVolume, Throughput
from commands.schedule import plan_backfill
from tests.integration import paced_window

RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))  # 4 windows of 5 days
TOKEN = "xoxb-monitor"


@dataclass
class Rig:
    emu: SlackEmulator
    jobs: PurgeJobService
    records: JobRecords
    outbox: Outbox
    config: Any
    pool: Any
    lookup: Any

    def monitor(self, job_end: JobEnd | None = None) -> Monitor:
        return Monitor(self.pool, self.jobs, self.outbox, self.config, lambda: datetime.now(UTC), job_end)

    def poster(self) -> SlackPoster:
        client = AsyncWebClient(token=TOKEN, base_url=self.emu.api_url, retry_handlers=[])
        return SlackPoster(self.outbox, client, per_channel_interval_s=0.02)

    async def start(self, customers: dict[str, int], parallel: int = 4) -> tuple[str, str]:
        """Start a backfill of 4 five-day windows per customer (per_day conversations a day); its status ts."""
        volumes = [DayVolume(customer=c, day=d, conversations=n)
                   for c, n in customers.items() for d in RANGE.each_day()]
        refs = [CustomerRef(name=c, cluster="chat-prod") for c in customers]
        plan = plan_backfill(volumes, refs, RANGE, self.config.windows, self.config.throughput, parallel,
                             window_override=5)
        job = new_job_id("backfill")
        web = AsyncWebClient(token=TOKEN, base_url=self.emu.api_url)
        posted = await web.chat_postMessage(channel="C_OPS", text=f"Backfill {job}")
        await self.jobs.start_backfill(plan, job, "U_ALICE", "C_OPS")
        await asyncio.to_thread(self.records.set_message, job, "status", "C_OPS", posted["ts"])
        return job, str(posted["ts"])

    def thread(self, ts: str) -> list[str]:
        return [m.text for m in self.emu.thread("C_OPS", ts)]


async def drive(monitor: Monitor, poster: SlackPoster, until: Any, every: float = 0.5,
                limit: float = 60) -> list[float]:
    """Tick and drain until `until()` is true; returns the monotonic time of each tick."""
    ticks = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ticks.append(time.monotonic())
        await monitor.tick()
        while await poster.run_once():
            pass
        if await until():
            return ticks
        await asyncio.sleep(every)
    raise TimeoutError("the monitor did not see the job through")


async def flush(rig: Rig, poster: SlackPoster, limit: float = 30) -> None:
    """Send every message still in the outbox: the poster paces a channel, so one pass sends one a channel."""
    deadline = time.monotonic() + limit
    while rig.outbox.pending_count():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{rig.outbox.pending_count()} messages still in the outbox after {limit} s")
        await poster.run_once()
        await asyncio.sleep(0.02)


@asynccontextmanager
async def monitor_rig(temporal_env: Any, make_demo: Any) -> AsyncIterator[Rig]:
    """A demo dataset, a worker running PacedWindow windows on its own queue, and the Slack stand-in."""
    demo = make_demo(scale=0.002)
    queue = f"monitor-{uuid.uuid4()}"
    backfill = demo.config.backfill.model_copy(update={
        "window_workflow": "PacedWindow", "window_task_queue": queue, "window_input_mapping": paced_window.MAPPING})
    monitor_cfg = demo.config.monitor.model_copy(update={"stall_minutes": 0.05, "contention_ratio": 0.5})
    config = demo.config.model_copy(update={"backfill": backfill, "monitor": monitor_cfg,
                                            "throughput": Throughput(low=3600 * 100, high=3600 * 150)})
    jobs = PurgeJobService(temporal_env.client, demo.pool, config, queue, heartbeat_timeout_s=60)
    with SlackEmulator(signing_secret="s", bot_token=TOKEN) as emu:
        emu.add_user("U_ALICE", "alice")
        emu.add_channel("C_OPS", "ops")
        worker = build_worker(temporal_env.client, queue, demo.deps, extra_workflows=[paced_window.PacedWindow],
                              extra_activities=[paced_window.paced_reindex], heartbeat_throttle=timedelta(seconds=0.2))
        async with worker:
            yield Rig(emu, jobs, JobRecords(demo.pool), Outbox(demo.pool), config, demo.pool, demo.lookup)
        assert emu.contract_violations == []
    paced_window.RATES.clear()
    paced_window.STALL.clear()


@pytest_asyncio.fixture(loop_scope="session")
async def rig(temporal_env: Any, make_demo: Any) -> AsyncIterator[Rig]:
    async with monitor_rig(temporal_env, make_demo) as made:
        yield made


def status_eta(text: str) -> tuple[float, float] | None:
    found = re.search(r"ETA\*\\n(\d+)m(\d+)s to (\d+)m(\d+)s", text)
    if not found:
        return None
    a, b, c, d = map(int, found.groups())
    return a * 60 + b, c * 60 + d


async def test_status_shows_percent_and_an_eta_that_holds_and_events_post_once(rig: Rig) -> None:
    paced_window.RATES["hilton"] = 100.0  # 500 conversations a window: about 5 s each, all four at once
    job, ts = await rig.start({"hilton": 100})
    monitor, poster = rig.monitor(), rig.poster()
    seen: list[tuple[datetime, tuple[float, float], str]] = []

    async def finished() -> bool:
        status = rig.emu.message("C_OPS", ts)
        eta = status_eta(str(status.blocks))
        updated = re.search(r"updated (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", str(status.blocks))
        if eta and updated and "running" in status.text:
            seen.append((datetime.fromisoformat(updated.group(1)).replace(tzinfo=UTC), eta, status.text))
        return any("Backfill" in t and "done:" in t for t in rig.thread(ts))

    await drive(monitor, poster, finished)
    progress = await rig.jobs.progress(job)
    assert progress.state == "done"
    ended = max(datetime.fromisoformat(w.finished or "") for w in progress.windows)
    assert seen, "no ETA was ever shown"
    # The ETA shown mid-run (as of its "updated" second) contains the time that was really left.
    at, (lo, hi), text = seen[len(seen) // 2]
    left = (ended - at).total_seconds()
    assert lo - 1.5 <= left <= hi + 1.5, (lo, left, hi, text)
    assert re.search(r"running, (\d+)%", text)
    # Each window's finish and the summary are posted once; more ticks post nothing more.
    for _ in range(3):
        await monitor.tick()
        await poster.run_once()
    thread = rig.thread(ts)
    done_posts = [t for t in thread if "finished:" in t]
    assert len(done_posts) == 4 and len(set(done_posts)) == 4
    assert sum("Backfill" in t and "done:" in t for t in thread) == 1
    final = rig.emu.message("C_OPS", ts)
    assert "done 100%" in str(final.blocks)
    assert len([m for m in rig.emu.messages("C_OPS") if job in m.text]) == 1  # edited in place, never re-posted


async def test_a_stalled_window_and_uniform_slowness_raise_one_alert_each(rig: Rig) -> None:
    paced_window.RATES["marriott"] = 20.0  # far below half of the expected 100/s
    paced_window.STALL.add("marriott")
    job, ts = await rig.start({"marriott": 100})
    monitor, poster = rig.monitor(), rig.poster()

    async def alerted() -> bool:
        thread = rig.thread(ts)
        return any("stalled" in t for t in thread) and any("contended" in t for t in thread)

    try:
        await drive(monitor, poster, alerted, limit=90)
        for _ in range(4):
            await asyncio.sleep(0.3)
            await monitor.tick()
            await poster.run_once()
        thread = rig.thread(ts)
        assert sum("contended" in t for t in thread) == 1
        stalls = [t for t in thread if "stalled" in t]
        assert 1 <= len(stalls) <= 4 and len(set(stalls)) == len(stalls)  # one per stuck window, once each
        assert "throttle" in next(t for t in thread if "contended" in t)
        await status_command_shows_the_monitor_figures(rig, monitor, poster, job, ts)
    finally:
        await rig.jobs.cancel(job)
        await rig.jobs.wait(job)


def figures(blocks: Any) -> list[str]:
    """The Progress, Rate and ETA fields of a status message."""
    text = str(blocks)
    return [re.search(rf"\*{name}\*\\n([^'\"]*)", text).group(1) for name in ("Progress", "Rate", "ETA")]  # type: ignore[union-attr]


async def status_command_shows_the_monitor_figures(rig: Rig, monitor: Monitor, poster: SlackPoster, job: str,
                                                   ts: str) -> None:
    """With every window stuck (progress frozen), `/backfill status JOB` and the status message agree."""
    last = -1
    while (done := sum(w.done for w in (await rig.jobs.progress(job)).windows)) != last:
        last = done
        await asyncio.sleep(1.0)
    await monitor.tick()
    while rig.outbox.pending_count():  # the status edit reaches Slack (the poster paces the channel)
        await poster.run_once()
        await asyncio.sleep(0.02)
    deps = SlackDeps(rig.config, None, rig.jobs, rig.records, None, None, None)  # type: ignore[arg-type]
    reply = await JobFlow(deps, None).status_message(rig.records.get(job))  # type: ignore[arg-type]
    shown = figures(rig.emu.message("C_OPS", ts).blocks)
    assert figures(reply.as_kwargs()["blocks"]) == shown
    assert shown[1:] == ["-", "not yet known"]  # every window stuck: no rate, and no ETA it would not keep


async def test_a_restarted_monitor_posts_what_it_missed_and_nothing_twice(rig: Rig) -> None:
    paced_window.RATES["spirit"] = 100.0
    job, ts = await rig.start({"spirit": 100})
    first, poster = rig.monitor(), rig.poster()
    await drive(first, poster, lambda: asyncio.sleep(0, result=True))  # one tick, then the process "dies"
    before = rig.emu.message("C_OPS", ts).edits
    await rig.jobs.wait(job)  # every window finishes while no monitor runs
    second, poster = rig.monitor(), rig.poster()  # a new process: nothing in memory

    async def summarised() -> bool:
        return any("Backfill" in t and "done:" in t for t in rig.thread(ts))

    await drive(second, poster, summarised)
    for _ in range(3):
        await second.tick()
        await poster.run_once()
    thread = rig.thread(ts)
    assert Counter(thread).most_common(1)[0][1] == 1  # nothing posted twice
    assert sum("finished:" in t for t in thread) == 4
    assert rig.emu.message("C_OPS", ts).edits > before  # it kept editing the same status message
    assert len([m for m in rig.emu.messages("C_OPS") if job in m.text]) == 1
