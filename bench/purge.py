"""Purge benchmark: the chunked purge of oportun (Temporal, one-day chunks) vs one single DELETE
of the same rows on an identical copy of its cluster's tables, in the same run.

Prints both times, the ratio and the largest chunk's rows (every chunk under the cap).
Last line: one JSON object. Target: ratio <= 2.0 with every chunk under the cap.
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
from bot.demo import DemoSpec, ch_database, demo_config, load_demo
from bot.embedded import EmbeddedStack
from bot.jobs import new_job_id
from bot.planning import PlanningService, PurgeRequest
from bot.purge_jobs import PurgeJobService
from bot.registry import CustomerRegistry
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--strategy", choices=["mutation", "lightweight"], default="mutation")
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-purge"))
    args = ap.parse_args()
    spec = DemoSpec(scale=args.scale)
    raw = demo_config(spec)
    raw["purge"]["strategy"] = args.strategy
    config = parse_config(raw, "demo config")
    with EmbeddedStack(args.data_dir, temporal=True) as stack:
        load_demo(stack.pg_dsn, stack.clickhouse, spec, db_prefix="")
        db = ch_database("us-east-2")
        session = stack.chdb
        # Fresh copies each run: the original to purge in chunks, the copy for the single DELETE.
        for name in ("work", "copy"):
            session.query(f"DROP DATABASE IF EXISTS bench_{name}")
            session.query(f"CREATE DATABASE bench_{name}")
            for table in ("scorecards", "scores"):
                session.query(f"CREATE TABLE bench_{name}.{table} AS {db}.{table}")
                session.query(f"INSERT INTO bench_{name}.{table} SELECT * FROM {db}.{table}")
        raw["clusters"] = [c for c in raw["clusters"] if c["name"] == "us-east-2"]
        raw["clusters"][0]["regions"][0]["database"] = "bench_work"
        raw["customers"]["explicit"] = [c for c in raw["customers"]["explicit"] if c["cluster"] == "us-east-2"]
        config = parse_config(raw, "bench config")
        pool = make_pool(stack.pg_dsn, max_size=20)
        apply_migrations(pool)
        lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: session), config.lookup)
        planning = PlanningService(config, CustomerRegistry.from_config(config), pool, lookup)
        plan = planning.plan_purge(PurgeRequest(("oportun",)), date.today()).plan
        chunks = plan.clusters[0].chunks

        async def chunked() -> float:
            assert stack.temporal_address is not None
            client = await Client.connect(stack.temporal_address)
            queue = f"bench-{uuid.uuid4()}"
            jobs = PurgeJobService(client, pool, config, queue, heartbeat_timeout_s=60)
            async with build_worker(client, queue, ActivityDeps(config, pool, pool, lookup)):
                job = new_job_id("purge")
                t0 = time.perf_counter()
                await jobs.start_purge(plan, job, "bench")
                await jobs.purge_result(job)
                return time.perf_counter() - t0

        chunked_s = asyncio.run(chunked())
        where = ("customer_id = 'oportun' AND day BETWEEN '{lo}' AND '{hi}' AND scorecard_id IN (SELECT scorecard_id"
                 " FROM bench_copy.scorecards WHERE customer_id = 'oportun' AND scorecard_type IN (1,2,3))")
        where = where.format(lo=plan.range.start, hi=plan.range.end)
        t0 = time.perf_counter()
        verb = "DELETE FROM bench_copy.{t} WHERE {w}" if args.strategy == "lightweight" else \
            "ALTER TABLE bench_copy.{t} DELETE WHERE {w} SETTINGS mutations_sync = 2"
        session.query(verb.format(t="scores", w=where))
        session.query(verb.format(t="scorecards", w="customer_id = 'oportun' AND scorecard_type IN (1,2,3)"))
        single_s = time.perf_counter() - t0
        left = session.query("SELECT count() FROM bench_work.scorecards WHERE customer_id = 'oportun'"
                             " AND scorecard_type <= 3", "CSV").bytes().strip()
        pool.close()
    print(json.dumps({
        "bench": "purge", "strategy": args.strategy, "scale": args.scale, "chunks": len(chunks),
        "rows": plan.total_scorecards + plan.total_scores, "cap": plan.max_rows_per_mutation,
        "largest_chunk_rows": max(c.rows for c in chunks), "all_under_cap": all(not c.over_cap for c in chunks),
        "appeal_rows_left": int(left), "chunked_s": round(chunked_s, 2), "single_delete_s": round(single_s, 2),
        "ratio": round(chunked_s / single_s, 2), "today": date.today().isoformat(),
    }))


if __name__ == "__main__":
    main()
