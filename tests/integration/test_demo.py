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


def _appeals(ch: ChdbClickHouse, customer: str) -> int:
    return int(ch.query(f"SELECT count() FROM `{ch.database}`.scorecards WHERE customer_id = {{c:String}}"
                        " AND scorecard_type <= 3", {"c": customer})[0][0])


def test_loaded_data_is_never_loaded_again_over_what_jobs_changed(pg_dsn: str, chdb_session: Any) -> None:
    """The bug this guards: a purge made the next start see "incomplete" counts and reload the demo."""
    import pytest

    from bot.embedded.demo_marker import DemoDataMismatch, DemoSpecChanged

    prefix = "m" + pg_dsn.rsplit("/", 1)[1].split("?")[0][-8:] + "_"
    spec = DemoSpec(scale=0.001, seed=5)

    def ch_for(db: str) -> ChdbClickHouse:
        return ChdbClickHouse(chdb_session, prefix + db)

    first = load_demo(pg_dsn, ch_for, spec)
    assert first.reloaded and first.loaded_at
    oportun = ch_for(ch_database("us-east-2"))
    assert _appeals(oportun, "oportun") > 0
    oportun.command(f"ALTER TABLE `{oportun.database}`.scorecards DELETE WHERE scorecard_type <= 3"
                    " SETTINGS mutations_sync = 2")  # what a purge does
    again = load_demo(pg_dsn, ch_for, spec)
    assert not again.reloaded and again.loaded_at == first.loaded_at
    assert _appeals(oportun, "oportun") == 0  # the purge stands

    with pytest.raises(DemoSpecChanged, match=r"--scale 0.001 --seed 5.*--scale 0.002 --seed 5.*--reset"):
        load_demo(pg_dsn, ch_for, DemoSpec(scale=0.002, seed=5))
    assert _appeals(oportun, "oportun") == 0  # refused: nothing touched

    # ClickHouse lost its data (and its marker): said, not silently reloaded from Postgres
    ch_for("shepherd_demo").command(f"TRUNCATE TABLE `{prefix}shepherd_demo`.marker")
    with pytest.raises(DemoDataMismatch, match="--reset"):
        load_demo(pg_dsn, ch_for, spec)

    # a load that died before its markers: found by the missing marker, and loaded again
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM public.demo_meta")
    partial = load_demo(pg_dsn, ch_for, spec)
    assert partial.reloaded and partial.after_partial and _appeals(oportun, "oportun") > 0
    assert not load_demo(pg_dsn, ch_for, spec).reloaded

    # a marker written by an older Shepherd (no checksum, no ClickHouse marker) counts as loaded
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE public.demo_meta SET checksum = NULL")
    ch_for("shepherd_demo").command(f"TRUNCATE TABLE `{prefix}shepherd_demo`.marker")
    upgraded = load_demo(pg_dsn, ch_for, spec)
    assert not upgraded.reloaded
    assert not load_demo(pg_dsn, ch_for, spec).reloaded  # and the upgraded markers agree

    replaced = load_demo(pg_dsn, ch_for, DemoSpec(scale=0.002, seed=5), reload_other_spec=True)
    assert replaced.reloaded and replaced.scorecards > first.scorecards


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
