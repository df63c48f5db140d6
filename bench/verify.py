"""Verification benchmark: `/verify all` for the 95 demo customers over 51 days, at least 5M source scorecards.

Loads the demo dataset into an embedded stack under .shepherd/bench-verify (reused on later runs),
deletes the appeal rows from every cluster's ClickHouse once (the state after the cleanup, which is
what a verification checks), then times VerifyService.verify: the Postgres query (one, grouped),
the ClickHouse queries (one per cluster) and the whole call, with both sides at the same time (as
Shepherd runs them) and one side at a time (each side's own cost, without the other competing for the
same two cores: on one machine they share it, in production they are different servers).
Last line: one JSON object. Target: under 5 s in all.
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
from bot.adapters.sql import ch_table
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config, load_demo
from bot.embedded.stack import EmbeddedStack
from bot.registry import CustomerRegistry
from bot.verify.service import VerifyService
from commands.verify_report import report_text


def purge_appeals(lookup: ClusterLookup, clusters: list[str], types: tuple[int, ...]) -> int:
    """Delete every appeal scorecard and its scores in each cluster (scores first); rows deleted."""
    deleted = 0
    for cluster in clusters:
        ch = lookup.connect(cluster).client
        cards, scores = ch_table(ch.database, "scorecards"), ch_table(ch.database, "scores")
        params = {"types": list(types)}
        deleted += int(ch.query(f"SELECT count() FROM {cards} WHERE scorecard_type IN {{types:Array(UInt8)}}",
                                params)[0][0])
        ch.command(f"ALTER TABLE {scores} DELETE WHERE scorecard_id IN (SELECT scorecard_id FROM {cards}"
                   " WHERE scorecard_type IN {types:Array(UInt8)}) SETTINGS mutations_sync = 2", params)
        ch.command(f"ALTER TABLE {cards} DELETE WHERE scorecard_type IN {{types:Array(UInt8)}}"
                   " SETTINGS mutations_sync = 2", params)
    return deleted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.103)
    ap.add_argument("--days", type=int, default=51)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-verify"))
    args = ap.parse_args()
    spec = DemoSpec(scale=args.scale, days=args.days)
    config = parse_config(demo_config(spec), "demo config")
    marker = args.data_dir / "bench-verify.json"
    with EmbeddedStack(args.data_dir, temporal=False) as stack:
        began = time.perf_counter()
        lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: stack.chdb), config.lookup)
        saved = json.loads(marker.read_text()) if marker.exists() else {}
        if saved.get("spec") != spec.key():  # the loader would reload a cleaned ClickHouse: mark ours
            stats = load_demo(stack.pg_dsn, stack.clickhouse, spec, reload_other_spec=True)
            purged = purge_appeals(lookup, [c.name for c in config.clusters], config.appeal_types)
            saved = {"spec": spec.key(), "scorecards": stats.scorecards, "scores": stats.scores, "purged": purged}
            marker.write_text(json.dumps(saved))
        setup_s = time.perf_counter() - began
        pool = make_pool(stack.pg_dsn)
        registry = CustomerRegistry.from_config(config)
        service = VerifyService(config, registry, pool, lookup)
        alone = VerifyService(config, registry, pool, lookup, concurrent=False)
        runs, solo = [], []
        report = None
        for _ in range(args.repeat):
            report = service.verify(None, None, spec.start, spec.end)
            runs.append(report.timings)
            solo.append(alone.verify(None, None, spec.start, spec.end).timings)
        pool.close()
    assert report is not None
    print(report_text(report))
    med = {k: round(statistics.median(r[k] for r in runs), 3) for k in ("postgres", "clickhouse", "total")}
    best = {k: round(min(r[k] for r in runs), 3) for k in ("postgres", "clickhouse", "total")}
    for i, (r, a) in enumerate(zip(runs, solo, strict=True), 1):
        print(f"run {i}: both sides at once: postgres {r['postgres']:.2f} s, clickhouse {r['clickhouse']:.2f} s "
              f"(8 clusters at once), in all {r['total']:.2f} s; one side at a time: postgres {a['postgres']:.2f} s, "
              f"clickhouse {a['clickhouse']:.2f} s (clusters in turn), in all {a['total']:.2f} s")
    alone_med = {k: round(statistics.median(r[k] for r in solo), 3) for k in ("postgres", "clickhouse", "total")}
    print(json.dumps({
        "bench": "verify", "customers": len(report.customers), "days": args.days,
        "source_scorecards": saved["scorecards"], "source_scores": saved["scores"],
        "checked_scorecards": report.totals.postgres_scorecards, "checked_scores": report.totals.postgres_scores,
        "appeal_scorecards_purged_before": saved["purged"], "ok": report.ok, "setup_s": round(setup_s, 1),
        "postgres_s_median": med["postgres"], "clickhouse_s_median": med["clickhouse"], "total_s_median": med["total"],
        "postgres_s_best": best["postgres"], "clickhouse_s_best": best["clickhouse"], "total_s_best": best["total"],
        "alone_postgres_s_median": alone_med["postgres"], "alone_clickhouse_s_median": alone_med["clickhouse"],
        "alone_total_s_median": alone_med["total"], "target_total_s": 5.0, "met": med["total"] < 5.0,
        "repeat": args.repeat, "today": date.today().isoformat(),
    }))


if __name__ == "__main__":
    main()
