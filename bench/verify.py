"""Verification benchmark: `/verify all` for the 95 demo customers over 51 days, at least 5M source scorecards.

Loads the demo dataset into an embedded stack under .shepherd/bench-verify (reused on later runs),
deletes the appeal rows from every cluster's ClickHouse once (the state after the cleanup, which is
what a verification checks), then times VerifyService.verify: the Postgres query (one, grouped),
the ClickHouse queries (one per cluster) and the whole call, with both sides at the same time (as
Shepherd runs them) and one side at a time (each side's own cost, without the other competing for the
same two cores: on one machine they share it, in production they are different servers).
Last line: one JSON object. Target: under 5 s in all.

`--deep` (a fresh, smaller dataset each run: it is changed on purpose): the count verification against
`--deep` on the same clean data (`deep_vs_count`, target <= 3), then with differing rows of every kind
injected over 20 days (missing, extra, changed in Postgres, appeal, duplicated): `found_exact` (every
injected row named, nothing else) and `deep_with_diffs_vs_clean` (target <= 1.5). Then the repair plan of
those differences (`repair_rows_ratio`: rows it copies or deletes over the rows of the differing days,
target <= 1.0), carried out with the backfill's reindex pipeline and the purge engine's chunk filter (no
Temporal), and the differing days verified again (`repair_left`: differences left, must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import make_pool, utc_midnight
from bot.adapters.sql import ch_table
from bot.backfill.reindex import Reindexer
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config, load_demo
from bot.embedded.stack import EmbeddedStack
from bot.purge.target import chunk_target
from bot.registry import CustomerRegistry
from bot.temporal.models import ChunkSpec
from bot.verify.deep import DeepVerifier
from bot.verify.service import VerifyService
from commands.deep_report import deep_text
from commands.repair import RepairPlan, plan_repair, plan_text
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


def inject(pool: Any, lookup: ClusterLookup, registry: CustomerRegistry, spec: DemoSpec, per_kind: int
           ) -> set[tuple[str, str, int, int | None]]:
    """`per_kind` differing rows of each kind, spread over 20 days and over customers of every cluster;
    returns what deep verification must name: (kind, table, scorecard id, criterion id)."""
    refs = sorted(registry.all(), key=lambda r: (r.cluster, r.name))
    expected: set[tuple[str, str, int, int | None]] = set()
    extra_id = 900_000_000_000
    for i in range(per_kind):
        ref, day = refs[(i * 7) % len(refs)], spec.start + timedelta(days=(i % 20) * max(1, spec.days // 20))
        with pool.connection() as conn:
            picked = conn.execute(
                "SELECT s.id, min(x.criterion_id), max(x.criterion_id) FROM scorecards s JOIN scores x ON"
                " x.scorecard_id = s.id WHERE s.customer_id = %s AND s.created_at >= %s AND s.created_at < %s"
                " AND s.scorecard_type > 3 GROUP BY s.id HAVING count(*) >= 2 ORDER BY s.id LIMIT 3",
                (ref.name, utc_midnight(day), utc_midnight(day + timedelta(days=1)))).fetchall()
            if len(picked) < 3:
                continue
            (lost, lost_k, _), (dup, dup_k, _), (changed, changed_k, _) = picked
            conn.execute("UPDATE scores SET value = value + 0.5 WHERE scorecard_id = %s AND criterion_id = %s",
                         (changed, changed_k))
        ch = lookup.connect(ref.cluster).client
        scores = ch_table(ch.database, "scores")
        ch.command(f"ALTER TABLE {scores} DELETE WHERE scorecard_id = {{i:UInt64}} AND criterion_id = {{k:UInt32}}"
                   " SETTINGS mutations_sync = 2", {"i": lost, "k": lost_k})
        ch.command(f"INSERT INTO {scores} SELECT * FROM {scores} WHERE scorecard_id = {{i:UInt64}}"
                   " AND criterion_id = {k:UInt32}", {"i": dup, "k": dup_k})
        extra_id += 2
        rows = (f"{ref.name},{day},{extra_id},1,5,{day} 10:00:00\n"
                f"{ref.name},{day},{extra_id + 1},1,2,{day} 11:00:00\n")  # one extra, one appeal scorecard
        ch.insert_csv("scorecards", ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type",
                                     "created_at"], rows.encode())
        expected |= {("missing", "scores", lost, lost_k), ("duplicated", "scores", dup, dup_k),
                     ("changed", "scores", changed, changed_k), ("extra", "scorecards", extra_id, None),
                     ("appeal", "scorecards", extra_id + 1, None)}
    return expected


def deep_bench(args: argparse.Namespace) -> None:
    spec = DemoSpec(scale=args.scale, days=args.days)
    config = parse_config(demo_config(spec), "demo config")
    data = Path(tempfile.mkdtemp(prefix="bench-verify-deep-"))
    data.chmod(0o755)
    try:
        with EmbeddedStack(data, temporal=False) as stack:
            t0 = time.perf_counter()
            stats = load_demo(stack.pg_dsn, stack.clickhouse, spec)
            lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: stack.chdb), config.lookup)
            purge_appeals(lookup, [c.name for c in config.clusters], config.appeal_types)
            setup_s = time.perf_counter() - t0
            pool = make_pool(stack.pg_dsn)
            registry = CustomerRegistry.from_config(config)
            service = VerifyService(config, registry, pool, lookup)
            deep = DeepVerifier(service)
            count_s, clean_s = [], []
            for _ in range(args.repeat):
                count_s.append(service.verify(None, None, spec.start, spec.end).timings["total"])
                clean = deep.verify(None, None, spec.start, spec.end)
                clean_s.append(clean.timings["total"])
            expected = inject(pool, lookup, registry, spec, args.per_kind)
            diffs_s = []
            for _ in range(args.repeat):
                found = deep.verify(None, None, spec.start, spec.end)
                diffs_s.append(found.timings["total"])
            plan = plan_repair(found, {r.name: r.cluster for r in registry.all()}, config.windows, config.throughput)
            t0 = time.perf_counter()
            carry_out(config, pool, lookup, plan)
            repair_s = time.perf_counter() - t0
            days = [d for _, d in plan.pairs]
            after = deep.verify(tuple(sorted({c for c, _ in plan.pairs})), None, min(days), max(days))
            left = len(after.rows) + len(set(after.days_differing) & set(plan.pairs))
            pool.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    got = {(d.kind, d.table, d.scorecard_id, d.criterion_id) for d in found.rows}
    print(deep_text(found, cap=10))
    count, clean_med, diffs = (statistics.median(v) for v in (count_s, clean_s, diffs_s))
    for label, t in (("clean", clean.timings), ("with differences", found.timings)):
        print(f"deep, {label}: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()))
    print(plan_text(plan))
    print(f"count verification {count:.2f} s, deep on clean data {clean_med:.2f} s, deep with "
          f"{len(expected)} differing rows {diffs:.2f} s (medians of {args.repeat})")
    print(json.dumps({
        "bench": "verify_deep", "scale": args.scale, "days": args.days, "source_scorecards": stats.scorecards,
        "source_scores": stats.scores, "clean_ok": clean.ok, "injected_rows": len(expected),
        "found_rows": len(found.rows), "found_exact": got == expected, "rows_fetched": found.rows_fetched,
        "count_s_median": round(count, 3), "deep_clean_s_median": round(clean_med, 3),
        "deep_diffs_s_median": round(diffs, 3), "deep_vs_count": round(clean_med / count, 2),
        "deep_with_diffs_vs_clean": round(diffs / clean_med, 2),
        "deep_diffs_phases_s": {k: round(v, 3) for k, v in found.timings.items()}, "target_deep_vs_count": 3.0,
        "target_deep_with_diffs_vs_clean": 1.5, "setup_s": round(setup_s, 1), "repeat": args.repeat,
        "repair_rows": plan.rows_copied + plan.rows_deleted, "repair_rows_in_days": plan.rows_in_days,
        "repair_rows_ratio": round(plan.rows_ratio, 4), "target_repair_rows_ratio": 1.0,
        "repair_backfill_runs": len(plan.backfills), "repair_purges": len(plan.purges),
        "repair_share_of_all_rows": round(
            (plan.rows_copied + plan.rows_deleted) / (stats.scorecards + stats.scores), 5),
        "repair_s": round(repair_s, 2), "repair_left": left,
        "today": date.today().isoformat(),
    }))


def carry_out(config: Any, pool: Any, lookup: ClusterLookup, plan: RepairPlan) -> None:
    """The repair's jobs without Temporal: each window through the backfill's reindex pipeline, each purge
    through the purge engine's chunk filter (scores before their scorecards)."""
    for b in plan.backfills:
        reindex = Reindexer(config, pool, lookup.connect(b.cluster).client)
        for start, end in b.windows:
            reindex.run(b.customer, start, end)
    for p in plan.purges:
        ch = lookup.connect(p.cluster).client
        for table in ("scores", "scorecards"):
            spec = ChunkSpec(0, p.customer, table, p.start.isoformat(), p.end.isoformat(), 0)
            target = chunk_target(ch, config.target, spec, list(plan.types), f"bench-repair-{table}")
            target.issue("mutation")
            while target.live():
                time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.103)
    ap.add_argument("--days", type=int, default=51)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=Path(".shepherd/bench-verify"))
    ap.add_argument("--deep", action="store_true", help="deep vs count verification, on a fresh dataset")
    ap.add_argument("--per-kind", type=int, default=20, help="--deep: differing rows injected of each kind")
    args = ap.parse_args()
    if args.deep:
        deep_bench(args)
        return
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
