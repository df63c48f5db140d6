"""Backfill volumes from the source: the index-only per-day count and the grouped scan agree, on the
edges that matter (UTC midnights, appeals, a session in a DST time zone), and the fast way is used
only where the source has the index for it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from bot.backfill.source_volumes import SourceVolumes
from bot.config import SourceTables
from bot.embedded.schema import create_source_tables
from commands.models import DateRange

pytestmark = pytest.mark.integration

ROWS = [  # customer, scorecard_type, created_at (UTC)
    ("hilton", 5, "2026-03-07 23:59:59.999+00"),  # last instant of Mar 7
    ("hilton", 5, "2026-03-08 00:00:00+00"),  # first instant of Mar 8 (New York's DST day)
    ("hilton", 4, "2026-03-08 12:00:00+00"),
    ("hilton", 2, "2026-03-08 13:00:00+00"),  # appeal: never counted
    ("hilton", 6, "2026-03-09 04:30:00+00"),  # still Mar 8 in New York, Mar 9 in UTC
    ("hilton", 5, "2026-03-11 00:00:00+00"),  # the day after the range
    ("oportun", 6, "2026-03-06 23:00:00+00"),  # the day before the range
    ("oportun", 4, "2026-03-10 10:00:00+00"),
    ("oportun", 1, "2026-03-10 11:00:00+00"),  # appeal
    ("spirit", 5, "2026-03-09 09:00:00+00"),  # not asked for
]
RANGE = DateRange(start=date(2026, 3, 7), end=date(2026, 3, 10))
EXPECTED = {
    ("hilton", date(2026, 3, 7)): 1,
    ("hilton", date(2026, 3, 8)): 2,
    ("hilton", date(2026, 3, 9)): 1,
    ("oportun", date(2026, 3, 10)): 1,
}


@pytest.fixture()
def source(pg_dsn: str) -> Iterator[ConnectionPool]:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        create_source_tables(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO scorecards VALUES (%s, %s, %s, %s, %s)",
                [(i, c, i, t, at) for i, (c, t, at) in enumerate(ROWS)],
            )
    # A session in New York: the day bounds must still be UTC midnights, DST day included.
    pool = ConnectionPool(pg_dsn, min_size=1, max_size=4, kwargs={"options": "-c TimeZone=America/New_York"})
    yield pool
    pool.close()


def _as_dict(volumes: list) -> dict:  # type: ignore[type-arg]
    found = {(v.customer, v.day): v.conversations for v in volumes}
    assert len(found) == len(volumes), "a customer-day came back twice"
    return found


def _series_as_dict(series: dict[str, list[int]]) -> dict:  # type: ignore[type-arg]
    days = RANGE.each_day()
    assert all(len(counts) == len(days) for counts in series.values()), "a series does not cover the range"
    return {(name, days[i]): n for name, counts in series.items() for i, n in enumerate(counts) if n}


def test_both_counts_give_the_utc_days_without_appeals(source: ConnectionPool) -> None:
    """First the grouped scan (no index yet), then the index-only count: the same volumes."""
    asked = ["hilton", "oportun"]
    scan = SourceVolumes(source, SourceTables(), appeal_types=[1, 2, 3])
    assert scan.indexed() is False
    assert _as_dict(scan.day_volumes(asked, RANGE)) == EXPECTED
    assert _series_as_dict(scan.day_series(asked, RANGE)) == EXPECTED
    with source.connection() as conn:
        conn.execute("CREATE INDEX plain ON scorecards (customer_id, created_at)")
    assert SourceVolumes(source, SourceTables(), [1, 2, 3]).indexed() is False  # it lacks the type
    with source.connection() as conn:
        conn.execute("CREATE INDEX covering ON scorecards (customer_id, created_at) INCLUDE (scorecard_type)")
    by_index = SourceVolumes(source, SourceTables(), [1, 2, 3])
    assert by_index.indexed() is True
    assert _as_dict(by_index.day_volumes(asked, RANGE)) == EXPECTED
    assert _series_as_dict(by_index.day_series(asked, RANGE)) == EXPECTED
    one_day = DateRange(start=date(2026, 3, 8), end=date(2026, 3, 8))
    assert by_index.day_series(["hilton", "spirit"], one_day) == {"hilton": [2], "spirit": [0]}
    assert by_index.day_series(["hilton", "hilton"], one_day) == {"hilton": [2]}  # /backfill plan hilton,hilton
    assert by_index.day_series([], RANGE) == {} and by_index.day_volumes([], RANGE) == []
