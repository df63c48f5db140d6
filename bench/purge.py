"""Purge benchmark: the chunked purge of oportun (Temporal, key-range chunks, one partition each) vs
one single DELETE of the same rows on an identical copy of its cluster's tables, in the same run.

Also runs the same chunk activity one chunk after another in a plain loop (no Temporal, and so no
overlap of a day's scorecards with the next day's scores) on a third copy: what chunking costs
without the engine. Prints both main times, the ratio and the largest chunk's rows (every chunk
under the cap) and the mutations against their lower bound, sum(ceil(rows / cap)) per table and
partition. Last line: one JSON object. Targets: mutations == mutations_lower_bound, every chunk under
the cap, no appeal row left, ratio <= 2.0, chunked_vs_plain_loop <= 1.05.
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
from typing import Any

from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import ShepherdConfig, parse_config
from bot.embedded.demo import DemoSpec, ch_database, demo_config, load_demo
from bot.embedded.stack import EmbeddedStack
from bot.jobs.ids import new_job_id
from bot.planning import PlanningService, PurgeRequest
from bot.purge.activities import PurgeActivities
from bot.purge.service import PurgeJobService, chunk_specs
from bot.registry import CustomerRegistry
from bot.temporal.deps import ActivityDeps
from bot.temporal.models import ChunkInput
from bot.temporal.worker import build_worker
from commands.models import PurgePlan

COPIES = ("work", "copy", "direct")  # Temporal job, single DELETE, chunk loop without Temporal


def bench_config(raw: dict[str, Any], database: str) -> ShepherdConfig:
    raw = json.loads(json.dumps(raw))
    raw["clusters"] = [c for c in raw["clusters"] if c["name"] == "us-east-2"]
    raw["clusters"][0]["regions"][0]["database"] = database
    raw["customers"]["explicit"] = [c for c in raw["customers"]["explicit"] if c["cluster"] == "us-east-2"]
    return parse_config(raw, "bench config")


def chunk_inputs(plan: PurgePlan, config: ShepherdConfig) -> list[ChunkInput]:
    p = config.purge
    return [ChunkInput(job_id="bench", cluster=cluster, types=list(plan.types), strategy=p.strategy,
                       max_unfinished_mutations=p.max_unfinished_mutations, drift_tolerance=p.drift_tolerance,
                       chunk=spec)
            for cluster, specs in chunk_specs(plan).items() for spec in specs]


def single_delete(ch: Any, plan: PurgePlan, strategy: str) -> float:
    params = {"c": "oportun", "lo": plan.range.start, "hi": plan.range.end, "types": list(plan.types)}
    cards = ("customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date}"
             " AND scorecard_type IN {types:Array(UInt8)}")
    scores = ("customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date} AND scorecard_id IN"
              f" (SELECT scorecard_id FROM `{ch.database}`.scorecards WHERE {cards})")
    verb = "DELETE FROM `{db}`.{t} WHERE {w}" if strategy == "lightweight" else \
        "ALTER TABLE `{db}`.{t} DELETE WHERE {w} SETTINGS mutations_sync = 2"
    t0 = time.perf_counter()
    ch.command(verb.format(db=ch.database, t="scores", w=scores), params)
    ch.command(verb.format(db=ch.database, t="scorecards", w=cards), params)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--strategy", choices=["mutation", "lightweight"], default="mutation")
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-purge"))
    args = ap.parse_args()
    spec = DemoSpec(scale=args.scale)
    raw = demo_config(spec)
    raw["purge"]["strategy"] = args.strategy
    with EmbeddedStack(args.data_dir, temporal=True) as stack:
        load_demo(stack.pg_dsn, stack.clickhouse, spec, reload_other_spec=True)
        db, session = ch_database("us-east-2"), stack.chdb
        for name in COPIES:  # fresh identical copies each run
            session.query(f"DROP DATABASE IF EXISTS bench_{name}")
            session.query(f"CREATE DATABASE bench_{name}")
            for table in ("scorecards", "scores"):
                session.query(f"CREATE TABLE bench_{name}.{table} AS {db}.{table}")
                session.query(f"INSERT INTO bench_{name}.{table} SELECT * FROM {db}.{table}")
        configs = {name: bench_config(raw, f"bench_{name}") for name in COPIES}
        config = configs["work"]
        pool = make_pool(stack.pg_dsn, max_size=20)
        apply_migrations(pool)
        lookups = {name: ClusterLookup(c.clusters, DefaultResolver(os.environ, lambda: session), c.lookup)
                   for name, c in configs.items()}
        planning = PlanningService(config, CustomerRegistry.from_config(config), pool, lookups["work"])
        plan = planning.plan_purge(PurgeRequest(("oportun",)), date.today()).plan
        chunks = plan.clusters[0].chunks

        async def chunked() -> float:
            assert stack.temporal_address is not None
            client = await Client.connect(stack.temporal_address)
            queue = f"bench-{uuid.uuid4()}"
            jobs = PurgeJobService(client, pool, config, queue, heartbeat_timeout_s=60)
            async with build_worker(client, queue, ActivityDeps(config, pool, pool, lookups["work"])):
                job = new_job_id("purge")
                t0 = time.perf_counter()
                await jobs.start_purge(plan, job, "bench")
                await jobs.purge_result(job)
                return time.perf_counter() - t0

        chunked_s = asyncio.run(chunked())
        single_s = single_delete(lookups["copy"].connect("us-east-2").client, plan, args.strategy)
        direct = PurgeActivities(ActivityDeps(configs["direct"], pool, pool, lookups["direct"]))
        t0 = time.perf_counter()
        for inp in chunk_inputs(plan, configs["direct"]):
            ActivityEnvironment().run(direct.purge_chunk, inp)
        direct_s = time.perf_counter() - t0
        left = {name: session.query(f"SELECT count() FROM bench_{name}.scorecards WHERE customer_id = 'oportun'"
                                    " AND scorecard_type <= 3", "CSV").bytes().strip().decode() for name in COPIES}
        pool.close()
    largest = max(c.rows for c in chunks)
    print(f"chunked purge ({len(chunks)} chunks, Temporal): {chunked_s:.2f} s; single DELETE: {single_s:.2f} s;"
          f" ratio {chunked_s / single_s:.1f} (target <= 2.0); same chunks in a plain loop: {direct_s:.2f} s")
    print(f"mutations {len(chunks)}, lower bound {plan.mutations_lower_bound}")
    print(f"largest chunk {largest:,} rows, cap {plan.max_rows_per_mutation:,}: every chunk under the cap:"
          f" {all(not c.over_cap for c in chunks)}")
    print(json.dumps({
        "bench": "purge", "strategy": args.strategy, "scale": args.scale, "chunks": len(chunks),
        "mutations": len(chunks), "mutations_lower_bound": plan.mutations_lower_bound,
        "rows": plan.total_scorecards + plan.total_scores, "cap": plan.max_rows_per_mutation,
        "largest_chunk_rows": largest, "all_under_cap": all(not c.over_cap for c in chunks),
        "appeal_rows_left": {k: int(v) for k, v in left.items()}, "chunked_s": round(chunked_s, 2),
        "single_delete_s": round(single_s, 2), "ratio": round(chunked_s / single_s, 2),
        "chunks_without_temporal_s": round(direct_s, 2), "chunked_vs_plain_loop": round(chunked_s / direct_s, 2),
        "today": date.today().isoformat(),
    }))


if __name__ == "__main__":
    main()
