"""Row checksums agree across the engines: generated rows written to real Postgres and real ClickHouse
(chdb) as the backfill writes them give equal per-day and per-segment checksums, and no differing row."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.clickhouse import ChdbClickHouse
from bot.adapters.postgres import make_pool
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.embedded.schema import create_source_tables, create_target_tables
from bot.verify.checksums import ClickHouseChecksums, PostgresChecksums
from commands.deep_bisect import Segment, split
from commands.deep_rows import classify

pytestmark = pytest.mark.integration

CONFIG = parse_config(demo_config(DemoSpec()), "demo config")
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
customers = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)
card = st.tuples(
    st.sampled_from([0, 1]),  # which customer
    st.integers(0, 2**62),  # conversation id
    st.integers(4, 9),  # scorecard type (non-appeal)
    st.integers(0, 3 * 86400 * 10**6 - 1),  # microseconds after FIRST: three days, sub-second parts too
    # scores; a criterion may repeat (Postgres does not forbid it): ties must not order differently
    st.lists(st.tuples(st.integers(0, 3), st.floats(width=32)), max_size=5),
)


@pytest.fixture()
def sides(pg_dsn: str, ch_database: str, chdb_session: Any) -> Any:
    pool = make_pool(pg_dsn, max_size=4)
    with pool.connection() as conn:
        create_source_tables(conn)
    ch = ChdbClickHouse(chdb_session, ch_database)
    create_target_tables(ch)
    yield pool, ch
    pool.close()


def _write(pool: Any, ch: Any, names: tuple[str, str], cards: list[Any]) -> None:
    """Postgres gets the rows as the application writes them; ClickHouse as the backfill copies them."""
    with pool.connection() as conn:
        conn.execute("TRUNCATE scorecards, scores")
    for table in ("scorecards", "scores"):
        ch.command(f"TRUNCATE TABLE `{ch.database}`.{table}")
    card_csv, score_csv = io.StringIO(), io.StringIO()
    cw, sw = csv.writer(card_csv, quoting=csv.QUOTE_ALL), csv.writer(score_csv, quoting=csv.QUOTE_ALL)
    with pool.connection() as conn:
        for n, (who, conversation, kind, micros, scores) in enumerate(cards, start=1000):
            at = FIRST + timedelta(microseconds=micros)
            conn.execute("INSERT INTO scorecards VALUES (%s, %s, %s, %s, %s)", (n, names[who], conversation, kind, at))
            cw.writerow([names[who], at.date(), n, conversation, kind, at.strftime("%Y-%m-%d %H:%M:%S")])
            for i, (criterion, value) in enumerate(scores):
                conn.execute("INSERT INTO scores VALUES (%s, %s, %s, %s)", (n * 10 + i, n, criterion, value))
                sw.writerow([names[who], at.date(), n, criterion, repr(value)])
    if cards:
        ch.insert_csv("scorecards", ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type",
                                     "created_at"], card_csv.getvalue().encode())
        scored = score_csv.getvalue().encode()
        if scored:
            ch.insert_csv("scores", ["customer_id", "day", "scorecard_id", "criterion_id", "value"], scored)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.tuples(customers, customers).filter(lambda t: t[0] != t[1]), cards=st.lists(card, max_size=25))
def test_equal_rows_give_equal_checksums_on_both_engines(sides: Any, names: tuple[str, str], cards: list[Any]) -> None:
    pool, ch = sides
    _write(pool, ch, names, cards)
    pg, chs = PostgresChecksums(CONFIG, pool), ClickHouseChecksums(CONFIG, ch)
    first, last = date(2026, 1, 1), date(2026, 1, 3)
    pg_days, ch_days = pg.days(names, first, last), chs.days(names, first, last)
    assert {k: v.key() for k, v in pg_days.items()} == {k: v.key() for k, v in ch_days.items()}
    assert sum(v.cards for v in pg_days.values()) == len(cards)
    segments = [part for (c, d) in pg_days for part in split(Segment(c, d, 1000, 1000 + len(cards)), 3)]
    assert [s.key() for s in pg.segments(segments)] == [s.key() for s in chs.segments(segments)]
    (pc, ps), (cc, cs) = pg.rows(segments), chs.rows(segments)
    assert len(pc) == len(cards) and classify(pc, cc, ps, cs, CONFIG.appeal_types) == ()


def test_one_changed_column_changes_the_checksum(sides: Any) -> None:
    pool, ch = sides
    names = ("héllo|wörld", "b")
    _write(pool, ch, names, [(0, 7, 5, 1_500_000, [(1, 0.1), (2, -0.0)]), (1, 8, 6, 90_000_000_000, [])])
    pg, chs = PostgresChecksums(CONFIG, pool), ClickHouseChecksums(CONFIG, ch)
    day = date(2026, 1, 1)
    assert pg.days(names, day, day)[(names[0], day)].same(chs.days(names, day, day)[(names[0], day)])
    with pool.connection() as conn:
        conn.execute("UPDATE scores SET value = 0.0 WHERE criterion_id = 2")  # -0.0 and 0.0: other bits
    assert not pg.days(names, day, day)[(names[0], day)].same(chs.days(names, day, day)[(names[0], day)])
