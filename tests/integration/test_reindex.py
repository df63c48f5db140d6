"""The reindex pipeline on real Postgres and ClickHouse: exact copies, idempotent, resumable."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.adapters.clickhouse import ChdbClickHouse
from bot.adapters.postgres import make_pool
from bot.backfill.reindex import Progress, Reindexer
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config, load_demo

SPEC = DemoSpec(scale=0.002, seed=5)
START, END = date(2026, 1, 3), date(2026, 1, 12)


@pytest.fixture(scope="module")
def reindexer(pg_server_dsn: str, chdb_session: Any) -> Any:
    import uuid

    import psycopg

    prefix = "r" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{prefix}"')
    pg_dsn = pg_server_dsn.replace("/postgres?", f"/{prefix}?")
    load_demo(pg_dsn, lambda db: ChdbClickHouse(chdb_session, f"{prefix}_{db}"), SPEC)
    pool = make_pool(pg_dsn)
    ch = ChdbClickHouse(chdb_session, f"{prefix}_cluster_chat_prod")
    yield Reindexer(parse_config(demo_config(SPEC)), pool, ch), pool, ch
    pool.close()


def per_day(pool: Any, ch: ChdbClickHouse, customer: str) -> tuple[dict[Any, Any], dict[Any, Any]]:
    with pool.connection() as conn:
        pg = dict(conn.execute(
            "SELECT created_at::date, count(*) FROM scorecards WHERE customer_id = %s AND scorecard_type > 3"
            " AND created_at >= %s AND created_at < %s + 1 GROUP BY 1", (customer, START, END)).fetchall())
        pg_scores = dict(conn.execute(
            "SELECT s.created_at::date, count(*) FROM scorecards s JOIN scores x ON x.scorecard_id = s.id"
            " WHERE s.customer_id = %s AND s.scorecard_type > 3 AND s.created_at >= %s AND s.created_at < %s + 1"
            " GROUP BY 1", (customer, START, END)).fetchall())
    db = ch.database
    params = {"c": customer, "lo": START, "hi": END}
    cards = dict(ch.query(f"SELECT day, count() FROM `{db}`.scorecards WHERE customer_id = {{c:String}}"
                          " AND day BETWEEN {lo:Date} AND {hi:Date} GROUP BY day", params))
    scores = dict(ch.query(f"SELECT day, count() FROM `{db}`.scores WHERE customer_id = {{c:String}}"
                           " AND day BETWEEN {lo:Date} AND {hi:Date} GROUP BY day", params))
    assert cards == pg, "scorecards per day differ"
    assert scores == pg_scores, "scores per day differ"
    appeals = ch.query(f"SELECT count() FROM `{db}`.scorecards WHERE customer_id = {{c:String}}"
                       " AND day BETWEEN {lo:Date} AND {hi:Date} AND scorecard_type <= 3", params)
    assert appeals == [(0,)]
    return cards, scores


def test_reindex_copies_exactly_the_non_appeal_rows(reindexer: Any) -> None:
    r, pool, ch = reindexer
    seen: list[Progress] = []
    result = r.run("hilton", START, END, on_progress=lambda p: seen.append(Progress(**vars(p))))
    assert result.done == result.total > 0
    assert seen and seen[-1].done == result.total
    per_day(pool, ch, "hilton")
    # Running again (a retry from scratch) doubles nothing.
    r.run("hilton", START, END)
    cards, _ = per_day(pool, ch, "hilton")
    assert sum(cards.values()) == result.total


def test_resume_from_a_day_redoes_only_that_day_onwards(reindexer: Any) -> None:
    r, pool, ch = reindexer
    r.run("hilton", START, END)
    # Simulate a crash mid-window: later days half-copied (extra rows left behind), resume from day 6.
    ch.command(f"INSERT INTO `{ch.database}`.scorecards SELECT * FROM `{ch.database}`.scorecards"
               " WHERE customer_id = 'hilton' AND day = '2026-01-09'")
    before_resume = r.count_conversations("hilton", START, date(2026, 1, 7))
    resumed = r.run("hilton", START, END, resume_day=date(2026, 1, 8), done_before=before_resume)
    assert resumed.done == resumed.total and before_resume > 0
    assert resumed.scorecards == resumed.total - before_resume  # only day 6 onwards was copied again
    per_day(pool, ch, "hilton")
