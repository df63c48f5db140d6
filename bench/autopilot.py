"""Autopilot benchmark: the same backfill with fixed N = 1, 2, 4, 8, 16 and with `--parallel auto`.

On the embedded stack (Postgres for the jobs' records and locks, the Temporal dev server), the windows
are test workflows whose rate follows a contended resource (tests/integration/contended_window.py):
with n windows of one job copying at once, the resource does n x BASE conversations a second up to
KNEE windows and KNEE x BASE x DECAY^(n - KNEE) past it, shared equally, so the summed rate rises to
KNEE and then falls. Every mode gets its own resource and all six jobs run at once, in the same run
(one worker in this process). The autopilot is not told KNEE. Prints each mode's makespan and
`autopilot_vs_best_fixed` (best fixed makespan / auto makespan). Then, alone, a small backfill at N=4
runs twice, the second planned from the first run's windows (estimates that learn): `eta_coverage` is
the share of the second run's windows whose duration fell inside the range its plan showed. Last line:
one JSON object.
Targets: autopilot_vs_best_fixed >= 0.9, eta_coverage >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.backfill.rate_history import past_windows
from bot.backfill.service import JobService
from bot.config import ShepherdConfig, parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.embedded.stack import EmbeddedStack
from bot.jobs.ids import new_job_id
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker
from bot.writeups.service import WriteupService
from commands.estimates import learned_rates, throughput_for
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill, plan_backfill_series

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the contended test window lives in tests/
from tests.integration import contended_window as contended  # noqa: E402

RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))  # 4 five-day windows per customer
FIXED = (1, 2, 4, 8, 16)


def bench_config(queue: str, args: argparse.Namespace) -> ShepherdConfig:
    raw = demo_config(DemoSpec(scale=0.002))
    raw.setdefault("backfill", {}).update(
        window_workflow="ContendedWindow", window_task_queue=queue, window_input_mapping=contended.MAPPING,
        max_parallel=16, autopilot={"start": 2, "hold_s": args.hold, "settle_s": args.hold / 4,
                                    "interval_s": args.hold / 5})
    return parse_config(raw, "bench config")


async def start(jobs: JobService, config: ShepherdConfig, mode: str, args: argparse.Namespace,
                customers: int | None = None, per_day: int | None = None) -> str:
    names = [f"{mode}-c{i:02d}" for i in range(customers or args.customers)]
    volumes = [DayVolume(customer=c, day=d, conversations=per_day or args.per_day)
               for c in names for d in RANGE.each_day()]
    fixed = mode != "auto"
    plan = plan_backfill(volumes, [CustomerRef(name=c, cluster="chat-prod") for c in names], RANGE, config.windows,
                         config.throughput, int(mode.strip("neta")) if fixed else 4, window_override=5)
    job = new_job_id("backfill")
    await jobs.start_backfill(plan, job, "U_BENCH", autopilot=not fixed)
    return job


async def eta_coverage(jobs: JobService, pool: Any, config: ShepherdConfig, args: argparse.Namespace) -> float:
    """A backfill at N=4 on a resource of its own, then the same backfill again, planned from what the
    first run's windows did (kept as the monitor keeps a finished job's result): the share of the second
    run's windows whose duration fell inside the range its plan showed."""
    first = await start(jobs, config, "eta4", args, customers=args.eta_customers, per_day=args.eta_per_day)
    WriteupService(pool, config).store_result(first, await jobs.wait(first))
    names = [f"eta4-c{i:02d}" for i in range(args.eta_customers)]
    learned = learned_rates(past_windows(pool, names))
    throughput, rates = throughput_for(names, learned, config.throughput)
    plan = plan_backfill_series({c: [args.eta_per_day] * RANGE.days for c in names},
                                [CustomerRef(name=c, cluster="chat-prod") for c in names], RANGE, config.windows,
                                throughput, 4, 5, rates)
    job = new_job_id("backfill")
    await jobs.start_backfill(plan, job, "U_BENCH", autopilot=False)
    done = await jobs.wait(job)
    # The plan's range before its rounding to hundredths of an hour (these windows last seconds).
    planned = {(w.customer, w.start.isoformat(), w.end.isoformat()):
               (w.conversations / throughput[w.customer].high, w.conversations / throughput[w.customer].low)
               for w in plan.windows}
    inside = 0
    for w in done.windows:
        lo, hi = planned[(w.customer, w.start, w.end)]
        took = (datetime.fromisoformat(w.finished or "") - datetime.fromisoformat(w.started or "")).total_seconds()
        inside += lo * 3600 <= took <= hi * 3600
        if args.verbose:
            print(f"  {w.customer} {w.start}: took {took:.1f} s, planned {lo * 3600:.1f}-{hi * 3600:.1f} s")
    print(f"eta: {inside} of {len(done.windows)} windows inside their planned range "
          f"({plan.customers[0].rates})", flush=True)
    return round(inside / len(done.windows), 3)


async def measure(args: argparse.Namespace, stack: EmbeddedStack) -> dict[str, Any]:
    assert stack.temporal_address is not None
    contended.RESOURCE.base, contended.RESOURCE.knee, contended.RESOURCE.decay = args.base, args.knee, args.decay
    contended.STEP_S = args.step
    queue = f"bench-autopilot-{uuid.uuid4()}"
    config = bench_config(queue, args)
    pool = make_pool(stack.pg_dsn, max_size=10)
    apply_migrations(pool)
    client = await Client.connect(stack.temporal_address)
    jobs = JobService(client, pool, config, queue, heartbeat_timeout_s=60)
    lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: None), config.lookup)
    worker = build_worker(client, queue, ActivityDeps(config, pool, pool, lookup), max_activities=64,
                          extra_workflows=[contended.ContendedWindow], extra_activities=[contended.contended_reindex],
                          heartbeat_throttle=timedelta(seconds=args.heartbeat_throttle))
    modes = args.modes.split(",")
    async with worker:
        began = time.monotonic()
        ids = {mode: await start(jobs, config, mode, args) for mode in modes}
        makespan: dict[str, float] = {}
        while len(makespan) < len(modes) and time.monotonic() - began < args.limit:
            if args.verbose and "auto" in ids:
                p = await jobs.progress(ids["auto"])
                print(f"{time.monotonic() - began:6.1f}s auto N={p.parallel} running="
                      f"{sum(w.state == 'running' for w in p.windows)} resource={contended.resource('auto-').running}"
                      f" done={sum(w.state == 'done' for w in p.windows)}", flush=True)
            for mode, job in ids.items():
                if mode not in makespan and (await jobs.progress(job)).state in ("done", "failed", "cancelled"):
                    makespan[mode] = round(time.monotonic() - began, 1)
            await asyncio.sleep(0.5)
        auto = await jobs.progress(ids["auto"]) if "auto" in ids else None
        coverage = await eta_coverage(jobs, pool, config, args) if args.eta_customers else None
    pool.close()
    fixed = [m for m in makespan if m != "auto"]
    best_mode = min(fixed, key=lambda m: makespan[m]) if fixed else None
    ratio = makespan[best_mode] / makespan["auto"] if best_mode and "auto" in makespan else 0.0
    return {
        "bench": "autopilot", "windows_per_job": 4 * args.customers,
        "conversations_per_window": 5 * args.per_day, "eta_conversations_per_window": 5 * args.eta_per_day,
        "knee": args.knee, "decay": args.decay,
        "base_per_window_s": args.base, "hold_s": args.hold,
        "makespan_s": makespan, "best_fixed": best_mode,
        "autopilot_n_path": [(c.from_n, c.to_n) for c in auto.parallel_changes if c.by == "autopilot"] if auto else [],
        "autopilot_final_n": auto.parallel if auto else None,
        "autopilot_vs_best_fixed": round(ratio, 3), "eta_coverage": coverage,
        "target": "autopilot_vs_best_fixed >= 0.9, eta_coverage >= 0.9",
        "met": ratio >= 0.9 and coverage is not None and coverage >= 0.9,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=12, help="4 windows each, per job")
    ap.add_argument("--eta-customers", type=int, default=3, help="customers of the ETA runs (0: skip them)")
    ap.add_argument("--per-day", type=int, default=120, help="conversations a day (5 days a window)")
    # Window times are kept in whole seconds (the job's state table): a 6 s window reads as 6 or 7 s, more
    # than the learned range's 10% margin. 30 s windows keep the rounding under it.
    ap.add_argument("--eta-per-day", type=int, default=600, help="conversations a day in the ETA runs")
    ap.add_argument("--base", type=float, default=100.0, help="conversations/s of one window alone")
    ap.add_argument("--knee", type=int, default=4, help="windows at once past which the summed rate falls")
    ap.add_argument("--decay", type=float, default=0.9, help="the summed rate's factor per window past the knee")
    ap.add_argument("--hold", type=float, default=2.0, help="the autopilot's hold_s (settle hold/4, reads hold/5)")
    ap.add_argument("--step", type=float, default=0.25, help="seconds between a window's heartbeats")
    ap.add_argument("--heartbeat-throttle", type=float, default=0.3,
                    help="seconds between the heartbeats the worker sends to the server (< hold/5, the reads)")
    ap.add_argument("--limit", type=float, default=600.0, help="give up after this many seconds")
    ap.add_argument("--modes", default=",".join([*(f"n{n}" for n in FIXED), "auto"]),
                    help="which runs (nN: fixed N; auto), all at once")
    ap.add_argument("--verbose", action="store_true", help="print the auto job's N and windows as it runs")
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-autopilot"))
    args = ap.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    with EmbeddedStack(args.data_dir, temporal=True) as stack:
        out = asyncio.run(measure(args, stack))
    spans = ", ".join(f"{m} {s} s" for m, s in out["makespan_s"].items())
    print(f"makespans: {spans}; best fixed {out['best_fixed']}; autopilot path {out['autopilot_n_path']}")
    print(f"autopilot_vs_best_fixed {out['autopilot_vs_best_fixed']} (target >= 0.9)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
