"""Backfill benchmark: one BackfillWindow (Temporal, worker in-process) vs the raw pipeline.

Both copy the same rows (a large customer's non-appeal scorecards and their scores over the whole
demo range, as one window) on the embedded stack under --data-dir:
- raw: `bot.backfill.reindex.raw_copy`, one Postgres `COPY ... TO STDOUT (FORMAT csv)` per table streamed
  in batches into ClickHouse CSV inserts, no Temporal, no delete, no per-day split, into scratch
  copies of the target tables;
- window: the `BackfillWindow` workflow started directly (workflow -> reindex activity: count,
  delete the window's rows, copy day by day, heartbeats), into the real target tables.
Rounds alternate raw/window so neither profits alone from a warm cache; the best round of each
counts. Prints rows/s (scorecards + scores) for both and the ratio (target >= 0.9), and the CPU seconds
each used (this process, Postgres, Temporal): `cpu_ratio`, less swayed than wall time by other work
on a shared machine.

Then the fleet (bench/backfill_fleet.py): one job of `--fleet-customers` in `--fleet-window`-day
windows run by 1, 2 and 4 `shepherd worker` processes (`workers_scaling`: rows/s, CPU seconds per
process group, cores busy, each worker's peak RSS), and one worker's peak RSS reindexing the first
customer in windows of `--memory-windows` days (`memory`: flat if the data path streams). Last line:
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.adapters.sql import ch_table
from bot.backfill.reindex import raw_copy
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config, load_demo
from bot.embedded.stack import EmbeddedStack
from bot.temporal.deps import ActivityDeps
from bot.temporal.models import WindowInput, WindowResult
from bot.temporal.worker import build_worker
from commands.models import DateRange

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backfill_fleet  # noqa: E402


def scratch_tables(ch: Any, config: Any) -> tuple[str, str]:
    names = ("bench_raw_scorecards", "bench_raw_scores")
    for name, like in zip(names, (config.target.scorecards, config.target.scores), strict=True):
        ch.command(f"CREATE TABLE IF NOT EXISTS {ch_table(ch.database, name)} AS {ch_table(ch.database, like)}")
        ch.command(f"TRUNCATE TABLE {ch_table(ch.database, name)}")
    return names


async def run_window(client: Client, deps: ActivityDeps, inp: WindowInput) -> tuple[float, WindowResult]:
    queue = f"bench-{uuid.uuid4()}"
    async with build_worker(client, queue, deps):
        began = time.perf_counter()
        result: WindowResult = await client.execute_workflow(
            "BackfillWindow", inp, id=f"bench-window-{uuid.uuid4()}", task_queue=queue, result_type=WindowResult)
        return time.perf_counter() - began, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.03)
    ap.add_argument("--customer", default="hilton")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-backfill"))
    ap.add_argument("--workers", default="1,2,4", help="worker process counts for workers_scaling ('' skips)")
    ap.add_argument("--fleet-customers", default="hilton,marriott")
    ap.add_argument("--fleet-window", type=int, default=10, help="window days of the fleet job")
    ap.add_argument("--memory-windows", default="5,17,51", help="window sizes (days) for the RSS runs")
    args = ap.parse_args()
    spec = DemoSpec(scale=args.scale)
    config = parse_config(demo_config(spec), "demo config")
    customer = next(c for c in config.customers.explicit if c.name == args.customer)
    with EmbeddedStack(args.data_dir, temporal=True) as stack:
        load_demo(stack.pg_dsn, stack.clickhouse, spec, reload_other_spec=True)
        pool = make_pool(stack.pg_dsn, max_size=8)
        apply_migrations(pool)
        lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: stack.chdb), config.lookup)
        ch = lookup.connect(customer.cluster).client
        deps = ActivityDeps(config, pool, pool, lookup)
        inp = WindowInput(job_id="bench", customer=customer.name, cluster=customer.cluster,
                          start=spec.start.isoformat(), end=spec.end.isoformat(), est_hours_hi=1.0,
                          heartbeat_timeout_s=60, max_attempts=1)
        assert stack.temporal_address is not None
        address = stack.temporal_address
        raw_s: list[float] = []
        raw_cpu: list[float] = []
        window_cpu: list[float] = []

        def cpu_seconds() -> float:
            """CPU of everything either pipeline uses: this process (chdb, the worker), Postgres, Temporal."""
            temporal = [psutil.Process(stack._temporal.pid)] if stack._temporal is not None else []
            return (backfill_fleet._self_cpu() + backfill_fleet._cpu(backfill_fleet._postgres(stack.pgdata))
                    + backfill_fleet._cpu(temporal))

        window_s: list[float] = []
        raw_rows = window_rows = 0
        result: WindowResult | None = None

        async def rounds() -> None:
            nonlocal raw_rows, window_rows, result
            client = await Client.connect(address)
            for _ in range(args.rounds):
                tables = scratch_tables(ch, config)
                cpu = cpu_seconds()
                began = time.perf_counter()
                cards, scores = raw_copy(config, pool, ch, customer.name, spec.start, spec.end, tables)
                raw_s.append(time.perf_counter() - began)
                raw_cpu.append(cpu_seconds() - cpu)
                raw_rows = cards + scores
                cpu = cpu_seconds()
                seconds, result = await run_window(client, deps, inp)
                window_cpu.append(cpu_seconds() - cpu)
                window_s.append(seconds)
                window_rows = result.scorecards + result.scores
                print(f"round: raw {raw_rows:,} rows in {raw_s[-1]:.2f} s ({raw_cpu[-1]:.1f} CPU s);"
                      f" window {window_rows:,} rows in {seconds:.2f} s ({window_cpu[-1]:.1f} CPU s)", flush=True)

        asyncio.run(rounds())
        fleet: dict[str, Any] = {}
        if args.workers:
            fleet = backfill_fleet.run(
                stack, demo_config(spec), args.data_dir, pool, tuple(args.fleet_customers.split(",")),
                DateRange(start=spec.start, end=spec.end), args.fleet_window,
                tuple(int(n) for n in args.workers.split(",")),
                tuple(int(n) for n in args.memory_windows.split(",")))
        pool.close()
    assert result is not None and raw_rows == window_rows, "both must copy the same rows"
    raw_rate, window_rate = raw_rows / min(raw_s), window_rows / min(window_s)
    print(f"raw pipeline     {raw_rate:>12,.0f} rows/s  (best of {args.rounds}: {min(raw_s):.2f} s)")
    print(f"BackfillWindow   {window_rate:>12,.0f} rows/s  (best of {args.rounds}: {min(window_s):.2f} s)")
    print(f"ratio            {window_rate / raw_rate:>12.3f}  (target >= 0.9)")
    print(f"cpu_ratio        {min(raw_cpu) / min(window_cpu):>12.3f}  (raw CPU s over window CPU s, least of each)")
    print(json.dumps({
        "bench": "backfill", "customer": args.customer, "scale": args.scale, "rows": raw_rows,
        "scorecards": result.scorecards, "scores": result.scores, "rounds": args.rounds,
        "raw_s": [round(s, 2) for s in raw_s], "window_s": [round(s, 2) for s in window_s],
        "raw_rows_per_s": round(raw_rate), "window_rows_per_s": round(window_rate),
        "ratio": round(window_rate / raw_rate, 3),
        "raw_cpu_s": [round(s, 1) for s in raw_cpu], "window_cpu_s": [round(s, 1) for s in window_cpu],
        "cpu_ratio": round(min(raw_cpu) / min(window_cpu), 3), "batch_rows": config.backfill.batch_rows,
        "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), **fleet,
        "today": date.today().isoformat(),
    }))


if __name__ == "__main__":
    main()
