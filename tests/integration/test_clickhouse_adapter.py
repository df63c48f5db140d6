"""The chdb adapter on the real embedded engine; and the same SQL through clickhouse-connect."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

import pytest

from bot.adapters.chdb_session import current_path
from bot.adapters.clickhouse import ChdbClickHouse, ConnectClickHouse
from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table, quote_ident
from bot.errors import UpstreamError, UserInputError

pytestmark = pytest.mark.integration

COLUMNS = ["customer_id", "day", "scorecard_id", "scorecard_type", "created_at"]
CSV = (
    b"hilton,2026-01-03,1,1,2026-01-03 10:00:00\n"
    b"hilton,2026-01-03,2,4,2026-01-03 11:00:00\n"
    b"hilton,2026-01-04,3,2,2026-01-04 09:30:00\n"
    b'"o\'brien",2026-01-03,4,4,2026-01-03 12:00:00\n'
    b"spirit,2026-02-01,5,1,2026-02-01 08:00:00\n"
)


def create_scorecards(ch: ClickHouse) -> str:
    table = ch_table(ch.database, "scorecards")
    ch.command(
        f"CREATE TABLE {table} (customer_id String, day Date, scorecard_id UInt64, scorecard_type UInt8,"
        " created_at DateTime, note Nullable(String)) ENGINE = MergeTree"
        " PARTITION BY toYYYYMM(day) ORDER BY (customer_id, day, scorecard_id)"
    )
    return table


@pytest.fixture()
def ch(chdb_session: Any, ch_database: str) -> ClickHouse:
    client = ChdbClickHouse(chdb_session, ch_database)
    create_scorecards(client)
    assert client.insert_csv("scorecards", COLUMNS, CSV) == 5
    return client


def test_query_binds_string_and_date_and_returns_typed_values(ch: ClickHouse) -> None:
    table = ch_table(ch.database, "scorecards")
    rows = ch.query(
        f"SELECT customer_id, day, count(), max(created_at), any(note) FROM {table}"
        " WHERE customer_id = {c:String} AND day = {d:Date} GROUP BY customer_id, day",
        {"c": "hilton", "d": date(2026, 1, 3)},
    )
    assert rows == [("hilton", date(2026, 1, 3), 2, datetime(2026, 1, 3, 11, 0), None)]
    customer, day, n, _, _ = rows[0]
    assert type(customer) is str and type(day) is date and type(n) is int


def test_values_with_quotes_are_bound_not_spliced(ch: ClickHouse) -> None:
    table = ch_table(ch.database, "scorecards")
    sql = f"SELECT scorecard_id FROM {table} WHERE customer_id = {{c:String}} ORDER BY scorecard_id"
    assert ch.query(sql, {"c": "o'brien"}) == [(4,)]
    assert ch.query(sql, {"c": "x' OR 1=1 --"}) == []
    assert ch.query(sql, {"c": "hilton\\' OR \\'1\\'=\\'1"}) == []


def test_array_parameters_and_per_day_counts(ch: ClickHouse) -> None:
    table = ch_table(ch.database, "scorecards")
    rows = ch.query(
        f"SELECT customer_id, day, count() FROM {table} WHERE customer_id IN {{cs:Array(String)}}"
        " AND day BETWEEN {lo:Date} AND {hi:Date} AND scorecard_type IN {types:Array(UInt8)}"
        " GROUP BY customer_id, day ORDER BY customer_id, day",
        {
            "cs": ["hilton", "o'brien", "spirit"],
            "lo": date(2026, 1, 1),
            "hi": date(2026, 1, 31),
            "types": [1, 2, 3],
        },
    )
    assert rows == [("hilton", date(2026, 1, 3), 1), ("hilton", date(2026, 1, 4), 1)]


def test_alter_delete_and_system_mutations(ch: ClickHouse) -> None:
    table = ch_table(ch.database, "scorecards")
    ch.command(
        f"ALTER TABLE {table} DELETE WHERE customer_id = {{c:String}} AND day = {{d:Date}}"
        " AND scorecard_type IN {types:Array(UInt8)}",
        {"c": "hilton", "d": date(2026, 1, 3), "types": [1, 2, 3]},
    )
    sql = (
        "SELECT mutation_id, command, is_done, parts_to_do, latest_fail_reason FROM system.mutations"
        " WHERE database = {db:String} AND table = {t:String}"
    )
    deadline = time.monotonic() + 30
    rows = ch.query(sql, {"db": ch.database, "t": "scorecards"})
    while not all(r[2] == 1 for r in rows) and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = ch.query(sql, {"db": ch.database, "t": "scorecards"})
    assert len(rows) == 1
    mutation_id, command, is_done, parts_to_do, fail_reason = rows[0]
    assert isinstance(mutation_id, str) and "DELETE" in command
    assert (is_done, parts_to_do, fail_reason) == (1, 0, "")
    remaining = ch.query(f"SELECT scorecard_id FROM {table} WHERE customer_id = 'hilton' ORDER BY 1")
    assert remaining == [(2,), (3,)]


def test_lightweight_delete(ch: ClickHouse) -> None:
    table = ch_table(ch.database, "scorecards")
    ch.command(f"DELETE FROM {table} WHERE customer_id = {{c:String}}", {"c": "spirit"})
    assert ch.query(f"SELECT count() FROM {table}") == [(4,)]


def test_engine_errors_are_upstream_errors_naming_the_database(ch: ClickHouse) -> None:
    with pytest.raises(UpstreamError, match=rf"ClickHouse \(embedded, {ch.database}\): .*UNKNOWN_TABLE"):
        ch.query(f"SELECT * FROM {ch_table(ch.database, 'nope')}")


def test_names_are_validated_before_any_sql(chdb_session: Any, ch: ClickHouse) -> None:
    with pytest.raises(UserInputError):
        quote_ident("x; DROP TABLE y")
    with pytest.raises(UserInputError):
        ChdbClickHouse(chdb_session, "x; DROP TABLE y")
    with pytest.raises(UserInputError):
        ch.insert_csv("scorecards; DROP TABLE y", COLUMNS, CSV)
    with pytest.raises(UserInputError):
        ch.insert_csv("scorecards", ["customer_id) SELECT 1 --"], b"x\n")
    assert ch.query(f"SELECT count() FROM {ch_table(ch.database, 'scorecards')}") == [(5,)]
    assert ch.insert_csv("scorecards", COLUMNS, b"") == 0


def test_clickhouse_connect_runs_the_same_sql_with_the_same_results(ch: ClickHouse) -> None:
    """clickhouse-connect's chdb interface joins this process's engine: a real check of the mapping."""
    import clickhouse_connect

    path = current_path()
    assert path is not None
    connect = ConnectClickHouse(
        clickhouse_connect.get_client(interface="chdb", path=str(path), database=ch.database), ch.database
    )
    try:
        table = ch_table(ch.database, "scorecards")
        sql = (
            f"SELECT customer_id, day, count(), max(created_at) FROM {table}"
            " WHERE customer_id IN {cs:Array(String)} AND day >= {lo:Date}"
            " GROUP BY customer_id, day ORDER BY customer_id, day"
        )
        params = {"cs": ["hilton", "o'brien"], "lo": date(2026, 1, 1)}
        assert connect.query(sql, params) == ch.query(sql, params)
        assert (
            connect.insert_csv("scorecards", COLUMNS, b"united-east,2026-01-05,9,4,2026-01-05 00:00:00\n")
            == 1
        )
        connect.command(f"DELETE FROM {table} WHERE customer_id = {{c:String}}", {"c": "united-east"})
        count = f"SELECT count() FROM {table}"
        assert connect.query(count) == ch.query(count) == [(5,)]
        with pytest.raises(UpstreamError):
            connect.query(f"SELECT * FROM {ch_table(ch.database, 'nope')}")
    finally:
        connect.close()
    assert ch.query("SELECT 1") == [(1,)]  # closing that client leaves the shared engine open
