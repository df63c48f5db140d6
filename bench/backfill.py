"""Backfill benchmark: one BackfillWindow (Temporal, worker in-process) vs the raw pipeline.

Both reindex the same rows (hilton, the whole range as one window) on the embedded stack under
.shepherd/bench-backfill: the raw pipeline is the same Reindexer without Temporal. Prints rows/s
(scorecards + scores written) for both and their ratio. Last line: one JSON object. Target: >= 0.6.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import date
from pathlib import Path

from temporalio.client import Client

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import parse_config
from bot.demo import DemoSpec, demo_config, load_demo
from bot.embedded import EmbeddedStack
from bot.jobs import JobService, new_job_id
from bot.reindex import Reindexer
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.03)
    ap.add_argument("--customer", default="hilton")
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-backfill"))
    args = ap.parse_args()
    spec = DemoSpec(scale=args.scale)
    config = parse_config(demo_config(spec), "demo config")
    with EmbeddedStack(args.data_dir, temporal=True) as stack:
        load_demo(stack.pg_dsn, stack.clickhouse, spec)
        pool = make_pool(stack.pg_dsn, max_size=20)
        apply_migrations(pool)
        lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: stack.chdb), config.lookup)
        customer = next(c for c in config.customers.explicit if c.name == args.customer)
        rng = DateRange(start=spec.start, end=spec.end)

        began = time.perf_counter()
        raw = Reindexer(config, pool, lookup.connect(customer.cluster).client).run(customer.name, rng.start, rng.end)
        raw_s = time.perf_counter() - began
        raw_rows = raw.scorecards + raw.scores

        async def with_temporal() -> float:
            assert stack.temporal_address is not None
            client = await Client.connect(stack.temporal_address)
            queue = f"bench-{uuid.uuid4()}"
            deps = ActivityDeps(config, pool, pool, lookup)
            volumes = [DayVolume(customer=customer.name, day=d, conversations=1) for d in rng.each_day()]
            plan = plan_backfill(volumes, [CustomerRef(name=customer.name, cluster=customer.cluster)], rng,
                                 config.windows, config.throughput, 1, window_override=rng.days)
            jobs = JobService(client, pool, config, queue, heartbeat_timeout_s=60)
            async with build_worker(client, queue, deps):
                job = new_job_id("backfill")
                t0 = time.perf_counter()
                await jobs.start_backfill(plan, job, "bench")
                await jobs.result(job)
                return time.perf_counter() - t0

        temporal_s = asyncio.run(with_temporal())
        pool.close()
    raw_rate, temporal_rate = raw_rows / raw_s, raw_rows / temporal_s
    print(json.dumps({
        "bench": "backfill", "customer": args.customer, "scale": args.scale, "rows": raw_rows,
        "scorecards": raw.scorecards, "scores": raw.scores, "raw_s": round(raw_s, 2),
        "temporal_s": round(temporal_s, 2), "raw_rows_per_s": round(raw_rate),
        "temporal_rows_per_s": round(temporal_rate),
        "ratio": round(temporal_rate / raw_rate, 3), "today": date.today().isoformat(),
    }))


if __name__ == "__main__":
    main()
