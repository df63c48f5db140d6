"""Monitor benchmark: 20 backfill jobs with 200 running windows in all, on the Temporal dev server.

The windows are small test workflows that heartbeat at a steady rate (tests/integration/paced_window.py,
driven as a team's own window workflow), run by a worker in a separate process, as in production.
This process runs the monitor as `shepherd serve` does, against embedded Postgres and the Slack
stand-in: each tick reads every job (its query, and describe() of each running window for its
heartbeat), stores progress samples, edits each job's status message and posts events. Between
ticks the poster drains the outbox (channel pacing shortened to 50 ms, so draining 20 edits does
not take 20 s; the pacing is not what is measured) and the Slack Web API calls it made are counted.
Prints the tick duration p50/p95 and the Slack calls per tick. Last line: one JSON object.
Target: p95 under 2 s; Slack calls per tick no more than jobs plus events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import ShepherdConfig, parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.embedded.stack import EmbeddedStack
from bot.jobs.ids import new_job_id
from bot.jobs.records import JobRecords
from bot.monitor.service import Monitor
from bot.purge.service import PurgeJobService
from bot.slack.outbox import Outbox
from bot.slack.poster import SlackPoster
from bot.standins.slack.emulator import SlackEmulator
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the paced test window lives in tests/
from tests.integration import paced_window  # noqa: E402

RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 12))  # 10 one-day windows a job
TOKEN = "xoxb-bench"
CHANNELS = ("C_OPS1", "C_OPS2", "C_OPS3", "C_OPS4")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bench_config(queue: str) -> ShepherdConfig:
    raw = demo_config(DemoSpec(scale=0.002))
    raw.setdefault("backfill", {}).update(window_workflow="PacedWindow", window_task_queue=queue,
                           window_input_mapping=paced_window.MAPPING)
    return parse_config(raw, "bench config")


# ---- the worker process -----------------------------------------------------------------------


async def run_worker(args: argparse.Namespace) -> None:
    paced_window.STEP_S = args.step
    paced_window.DEFAULT_RATE = args.rate
    config = bench_config(args.queue)
    pool = make_pool(args.dsn, max_size=8)
    lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: None), config.lookup)
    client = await Client.connect(args.address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = build_worker(client, args.queue, ActivityDeps(config, pool, pool, lookup), max_activities=250,
                          extra_workflows=[paced_window.PacedWindow], extra_activities=[paced_window.paced_reindex],
                          heartbeat_throttle=timedelta(seconds=args.heartbeat_throttle))
    async with worker:
        print("worker ready", flush=True)
        await stop.wait()


# ---- the monitor side -------------------------------------------------------------------------


async def start_jobs(jobs: PurgeJobService, records: JobRecords, config: ShepherdConfig, emu: SlackEmulator,
                     count: int, per_job: int) -> list[str]:
    web = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    refs = [CustomerRef(name=c.name, cluster=c.cluster) for c in config.customers.explicit][:count]
    started = []
    for i, ref in enumerate(refs):
        volumes = [DayVolume(customer=ref.name, day=d, conversations=1_000_000) for d in RANGE.each_day()]
        plan = plan_backfill(volumes, [ref], RANGE, config.windows, config.throughput, per_job, window_override=1)
        job = new_job_id("backfill")
        channel = CHANNELS[i % len(CHANNELS)]
        posted = await web.chat_postMessage(channel=channel, text=f"Backfill {job}")
        await jobs.start_backfill(plan, job, "U_ALICE", channel)
        await asyncio.to_thread(records.set_message, job, "status", channel, str(posted["ts"]))
        started.append(job)
    return started


async def running_windows(jobs: PurgeJobService, ids: list[str]) -> int:
    found = await asyncio.gather(*(jobs.progress(j) for j in ids), return_exceptions=True)
    return sum(sum(w.state == "running" for w in p.windows) for p in found if not isinstance(p, BaseException))


async def measure(args: argparse.Namespace, stack: EmbeddedStack) -> dict[str, Any]:
    assert stack.temporal_address is not None
    queue = f"bench-monitor-{uuid.uuid4()}"
    config = bench_config(queue)
    pool = make_pool(stack.pg_dsn, max_size=20)
    apply_migrations(pool)
    worker = subprocess.Popen(
        [sys.executable, __file__, "--worker", "--address", stack.temporal_address, "--dsn", stack.pg_dsn,
         "--queue", queue, "--step", str(args.step), "--rate", str(args.rate),
         "--heartbeat-throttle", str(args.heartbeat_throttle)],
        cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert worker.stdout is not None
        line = await asyncio.to_thread(worker.stdout.readline)
        if b"ready" not in line:
            raise RuntimeError(f"the worker did not start: {line!r}")
        client = await Client.connect(stack.temporal_address)
        jobs = PurgeJobService(client, pool, config, queue, heartbeat_timeout_s=60)
        records, outbox = JobRecords(pool), Outbox(pool)
        with SlackEmulator(signing_secret="s", bot_token=TOKEN) as emu:
            emu.add_user("U_ALICE", "alice")
            for channel in CHANNELS:
                emu.add_channel(channel, channel.lower())
            ids = await start_jobs(jobs, records, config, emu, args.jobs, args.windows // args.jobs)
            deadline = time.monotonic() + 120
            while (running := await running_windows(jobs, ids)) < args.windows and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            monitor = Monitor(pool, jobs, outbox, config, lambda: datetime.now(UTC))
            poster = SlackPoster(outbox, AsyncWebClient(token=TOKEN, base_url=emu.api_url, retry_handlers=[]),
                                 per_channel_interval_s=0.05)
            ticks: list[dict[str, Any]] = []
            for _ in range(args.ticks):
                began = time.monotonic()
                result = await monitor.tick()
                calls_before = len(emu.calls)
                while outbox.pending_count():
                    await poster.run_once()
                    await asyncio.sleep(0.01)
                calls = sum(1 for c in emu.calls[calls_before:] if c.method.startswith("chat."))
                ticks.append({"s": result.seconds, "jobs": result.jobs, "events": result.events, "calls": calls})
                await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - began)))
            running_after = await running_windows(jobs, ids)
            violations = emu.contract_violations
        seconds = [t["s"] for t in ticks]
        over = [t for t in ticks if t["calls"] > t["jobs"] + t["events"]]
        return {
            "bench": "monitor", "jobs": len(ids), "windows_running_at_start": running,
            "windows_running_at_end": running_after, "ticks": len(ticks),
            "tick_p50_s": round(statistics.median(seconds), 3), "tick_p95_s": round(percentile(seconds, 95), 3),
            "tick_max_s": round(max(seconds), 3),
            "slack_calls_per_tick_max": max(t["calls"] for t in ticks),
            "slack_calls_per_tick_median": statistics.median(t["calls"] for t in ticks),
            "events_total": sum(t["events"] for t in ticks),
            "ticks_over_jobs_plus_events": len(over), "contract_violations": len(violations),
            "target": "p95 < 2 s; calls per tick <= jobs + events",
            "met": percentile(seconds, 95) < 2.0 and not over,
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--windows", type=int, default=200, help="running windows in all (an equal share per job)")
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds from one tick's start to the next")
    ap.add_argument("--rate", type=float, default=5.0, help="conversations/s per window (they outlast the run)")
    ap.add_argument("--step", type=float, default=0.5, help="seconds between a window's heartbeats")
    ap.add_argument("--heartbeat-throttle", type=float, default=10.0,
                    help="seconds between heartbeats the worker sends to the server (production: up to 60)")
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-monitor"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--address", help=argparse.SUPPRESS)
    ap.add_argument("--dsn", help=argparse.SUPPRESS)
    ap.add_argument("--queue", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(run_worker(args))
        return
    shutil.rmtree(args.data_dir, ignore_errors=True)  # no jobs left running from an earlier run
    with EmbeddedStack(args.data_dir, temporal=True) as stack:
        out = asyncio.run(measure(args, stack))
    print(f"{out['jobs']} jobs, {out['windows_running_at_start']} running windows: tick p50 {out['tick_p50_s']} s,"
          f" p95 {out['tick_p95_s']} s (target < 2 s); Slack calls per tick median"
          f" {out['slack_calls_per_tick_median']}, max {out['slack_calls_per_tick_max']};"
          f" ticks over jobs + events: {out['ticks_over_jobs_plus_events']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
