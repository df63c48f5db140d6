"""The demo dataset: the seed week's shape at any scale, identical in Postgres and ClickHouse."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg

from bot.adapters.clickhouse import ChdbClickHouse
from bot.config import parse_config
from bot.embedded.demo import CLUSTERS, DemoSpec, ch_database, demo_config, load_demo

SPEC = DemoSpec(scale=0.002, seed=11)


def test_demo_shape_and_copies(pg_dsn: str, chdb_session: Any) -> None:
    def ch_for(db: str) -> ChdbClickHouse:
        return ChdbClickHouse(chdb_session, db)

    stats = load_demo(pg_dsn, ch_for, SPEC)
    assert stats.reloaded and stats.customers == 95
    with psycopg.connect(pg_dsn) as conn:
        clusters = conn.execute("SELECT count(DISTINCT cluster) FROM customers").fetchone()
        assert clusters == (8,)
        days = conn.execute("SELECT count(DISTINCT created_at::date) FROM scorecards").fetchone()
        assert days == (51,)
        daily = dict(conn.execute(
            "SELECT customer_id, count(*) / 51.0 FROM scorecards WHERE scorecard_type > 3 GROUP BY 1"
        ).fetchall())
        per_card = conn.execute("SELECT count(*)::float / (SELECT count(*) FROM scorecards) FROM scores").fetchone()
        types = {r[0] for r in conn.execute("SELECT DISTINCT scorecard_type FROM scorecards").fetchall()}
        pg_counts = dict(conn.execute(
            "SELECT c.cluster, count(*) FROM scorecards s JOIN customers c ON c.id = s.customer_id GROUP BY 1"
        ).fetchall())
    s = SPEC.scale
    for big in ("hilton", "marriott", "spirit"):
        assert daily[big] >= 80_000 * s
    assert 30_000 * s <= daily["united-east"] < 80_000 * s
    assert daily["care-oregon"] < 30_000 * s
    assert sum(1 for v in daily.values() if v < 30_000 * s) >= 89
    assert per_card is not None and 8.5 < per_card[0] < 9.5
    assert {1, 2, 3} <= types and {4, 5, 6} <= types
    for cluster in CLUSTERS:
        ch = ch_for(ch_database(cluster))
        assert ch.query(f"SELECT count() FROM `{ch.database}`.scorecards")[0][0] == pg_counts[cluster]

    again = load_demo(pg_dsn, ch_for, SPEC)
    assert not again.reloaded and again.scorecards == stats.scorecards


def test_demo_is_deterministic_and_config_scales() -> None:
    from bot.embedded.demo import customers, daily_counts

    assert daily_counts(SPEC) == daily_counts(DemoSpec(scale=0.002, seed=11))
    assert daily_counts(SPEC) != daily_counts(DemoSpec(scale=0.002, seed=12))
    assert len(customers(SPEC)) == 95 and len({c[0] for c in customers(SPEC)}) == 95
    for scale in (0.001, 0.01, 1.0):
        config = parse_config(demo_config(DemoSpec(scale=scale)), "demo")
        assert config.windows.rules[0].min_daily == round(80_000 * scale)
        assert config.throughput.low == 35_000 * scale
        assert [r.name for r in config.cluster("voice-prod").regions] == ["us-east-1", "us-west-2"]
    by_cluster: dict[str, int] = defaultdict(int)
    for _, cluster, _, _ in customers(SPEC):
        by_cluster[cluster] += 1
    assert len(by_cluster) == 8
