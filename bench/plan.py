"""Planning benchmark: backfill and purge plans for all 95 demo customers over 365 days.

Loads the demo dataset (365 days, at least 5M source scorecards) into an embedded stack under
.shepherd/bench-plan (reused on later runs), then times the volume queries (Postgres: index-only
per-day counts in two concurrent date pieces, as the demo source has the index for them, one array
of daily counts per customer; one ClickHouse query per cluster, all clusters at once, one row per
customer with its days) and the pure planners separately, as `/backfill plan` and `/purge plan` do. Garbage
collection runs as it falls: a collection inside the planners counts against them.
Last line: one JSON object. Targets: pure planning < 100 ms; volume query + planning < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import date
from pathlib import Path

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import make_pool
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config, load_demo
from bot.embedded.stack import EmbeddedStack
from bot.planning import PlanningService
from bot.registry import CustomerRegistry
from commands.chunks import plan_purge_days
from commands.models import DateRange
from commands.schedule import plan_backfill_series


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.0142)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-plan"))
    args = ap.parse_args()
    spec = DemoSpec(scale=args.scale, days=args.days)
    config = parse_config(demo_config(spec), "demo config")
    with EmbeddedStack(args.data_dir, temporal=False) as stack:
        began = time.perf_counter()
        stats = load_demo(stack.pg_dsn, stack.clickhouse, spec, reload_other_spec=True)
        load_s = time.perf_counter() - began
        pool = make_pool(stack.pg_dsn)
        lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: stack.chdb), config.lookup)
        registry = CustomerRegistry.from_config(config)
        planning = PlanningService(config, registry, pool, lookup)
        customers = registry.all()
        rng = DateRange(start=spec.start, end=spec.start.fromordinal(spec.start.toordinal() + args.days - 1))
        query_s, pure_s, total_s, backfill_s, purge_s = [], [], [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            series = planning.backfill_series(customers, rng)  # what `/backfill plan all` asks
            t1 = time.perf_counter()
            backfill = plan_backfill_series(series, customers, rng, config.windows, config.throughput,
                                            config.backfill.default_parallel)
            t2 = time.perf_counter()
            found, _ = planning.purge_days(customers, rng, config.appeal_types)  # what `/purge plan all` asks
            t3 = time.perf_counter()
            purge = plan_purge_days(found, customers, rng, config.appeal_types, config.purge)
            t4 = time.perf_counter()
            query_s.append((t1 - t0) + (t3 - t2))
            pure_s.append((t2 - t1) + (t4 - t3))
            total_s.append(t4 - t0)
            backfill_s.append(t2 - t0)
            purge_s.append(t4 - t2)
        indexed = planning.volumes.indexed()
        pool.close()
    result = {
        "bench": "plan",
        "customers": len(customers),
        "days": args.days,
        "source_scorecards": stats.scorecards,
        "source_scores": stats.scores,
        "load_s": round(load_s, 2),
        "volume_days": sum(1 for counts in series.values() for n in counts if n),
        "source_counts": "index-only per day" if indexed else "grouped scan",
        "purge_days": sum(len(entry.days) for entry in found.values()),
        "windows": len(backfill.windows),
        "chunks": sum(len(c.chunks) for c in purge.clusters),
        "query_s_median": round(statistics.median(query_s), 3),
        "pure_ms_median": round(statistics.median(pure_s) * 1000, 1),
        "query_plus_plan_s_median": round(statistics.median(total_s), 3),
        "query_plus_plan_s_max": round(max(total_s), 3),
        "backfill_plan_s_median": round(statistics.median(backfill_s), 3),  # one command: PG query + planning
        "purge_plan_s_median": round(statistics.median(purge_s), 3),  # one command: 8 clusters at once + planning
        "today": date.today().isoformat(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
