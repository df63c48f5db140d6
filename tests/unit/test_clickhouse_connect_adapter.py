"""ConnectClickHouse is a thin mapping onto a clickhouse-connect client; parameter text and result
conversion of the chdb adapter; connect_region never shows a password."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from bot.adapters.clickhouse import ConnectClickHouse, connect_region, convert_rows, converter, param_text
from bot.adapters.ports import ClickHouse
from bot.config import Region
from bot.errors import ConfigError, UpstreamError, UserInputError


class FakeResult:
    def __init__(self, rows: list[Any]) -> None:
        self.result_rows = rows


class FakeSummary:
    def __init__(self, written_rows: int) -> None:
        self.written_rows = written_rows


class FakeClient:
    """Records what ConnectClickHouse asks of a clickhouse-connect client."""

    def __init__(self, rows: list[Any] | None = None, fail: bool = False) -> None:
        self.rows = rows or []
        self.fail = fail
        self.calls: list[tuple[Any, ...]] = []
        self.closed = False

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> FakeResult:
        self.calls.append(("query", sql, parameters))
        if self.fail:
            raise DatabaseError("Code: 60. DB::Exception: Table analytics.nope does not exist")
        return FakeResult(self.rows)

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> str:
        self.calls.append(("command", sql, parameters))
        return ""

    def raw_insert(
        self, table: str, column_names: Sequence[str], insert_block: bytes, fmt: str
    ) -> FakeSummary:
        self.calls.append(("raw_insert", table, list(column_names), insert_block, fmt))
        return FakeSummary(insert_block.count(b"\n"))

    def close(self) -> None:
        self.closed = True


def test_query_passes_server_side_parameters_and_returns_tuples() -> None:
    client = FakeClient(rows=[["hilton", date(2026, 2, 1), 3]])
    ch = ConnectClickHouse(client, "analytics")
    assert isinstance(ch, ClickHouse)
    sql = "SELECT customer_id, day, count() FROM `analytics`.`scorecards` WHERE customer_id = {c:String}"
    assert ch.query(sql, {"c": "hilton"}) == [("hilton", date(2026, 2, 1), 3)]
    assert client.calls == [("query", sql, {"c": "hilton"})]
    ch.query("SELECT 1")
    assert client.calls[-1] == ("query", "SELECT 1", None)


def test_command_insert_and_close_map_onto_the_client() -> None:
    client = FakeClient()
    ch = ConnectClickHouse(client, "analytics")
    ch.command("ALTER TABLE `analytics`.`scores` DELETE WHERE day = {d:Date}", {"d": date(2026, 1, 3)})
    assert client.calls[0] == (
        "command",
        "ALTER TABLE `analytics`.`scores` DELETE WHERE day = {d:Date}",
        {"d": date(2026, 1, 3)},
    )
    n = ch.insert_csv("scores", ["customer_id", "day"], b"hilton,2026-01-03\nspirit,2026-01-03\n")
    assert n == 2
    assert client.calls[1] == (
        "raw_insert",
        "`analytics`.`scores`",
        ["customer_id", "day"],
        b"hilton,2026-01-03\nspirit,2026-01-03\n",
        "CSV",
    )
    assert ch.insert_csv("scores", ["customer_id"], b"") == 0
    assert len(client.calls) == 2  # nothing sent for no data
    ch.close()
    assert client.closed


def test_client_errors_become_upstream_errors_and_bad_names_are_refused() -> None:
    ch = ConnectClickHouse(FakeClient(fail=True), "analytics")
    with pytest.raises(UpstreamError, match=r"ClickHouse \(analytics\): Code: 60"):
        ch.query("SELECT * FROM nope")
    with pytest.raises(UserInputError):
        ch.insert_csv("scores", ["day; DROP TABLE x"], b"1\n")
    with pytest.raises(UserInputError):
        ConnectClickHouse(FakeClient(), "x; DROP TABLE y")


def test_connect_region_reads_credentials_from_the_named_variables_and_hides_the_password() -> None:
    region = Region(name="us-east-1", host="127.0.0.1", port=1, tls=False, username_env="U", password_env="P")
    with pytest.raises(ConfigError, match="environment variable P is not set"):
        connect_region(region, {"U": "shepherd"})
    with pytest.raises(UpstreamError) as info:  # nothing listens on port 1
        connect_region(region, {"U": "shepherd", "P": "s3cret-pw"})
    assert "s3cret-pw" not in str(info.value)
    assert "us-east-1" in info.value.message and "127.0.0.1:1" in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("it's", "it\\'s"),
        ("a\\b\tc\nd", "a\\\\b\\tc\\nd"),
        (None, "\\N"),
        (True, "true"),
        (42, "42"),
        (1.5, "1.5"),
        (date(2026, 2, 21), "2026-02-21"),
        (datetime(2026, 2, 21, 3, 4, 5), "2026-02-21 03:04:05"),
        (datetime(2026, 1, 1, tzinfo=UTC), "1767225600"),
        (datetime(2026, 1, 1, 1, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1))), "1767225600.250000"),
        (["o'brien", "b"], "['o\\'brien', 'b']"),
        ([1, 2, 3], "[1, 2, 3]"),
        ([date(2026, 1, 1), None], "['2026-01-01', NULL]"),
        (("a", 1), "('a', 1)"),
    ],
)
def test_param_text(value: Any, text: str) -> None:
    assert param_text(value) == text


def test_converter_types() -> None:
    assert converter("UInt64")(18446744073709551615) == 18446744073709551615
    assert converter("Int64")("-5") == -5
    assert converter("Float64")(2.5) == 2.5
    assert converter("Decimal(18, 2)")(1.25) == Decimal("1.25")
    assert converter("Date")("2026-02-21") == date(2026, 2, 21)
    assert converter("Date32")("1900-01-01") == date(1900, 1, 1)
    assert converter("DateTime")("2026-02-21 03:04:05") == datetime(2026, 2, 21, 3, 4, 5)
    assert converter("DateTime('UTC')")("2026-02-21 03:04:05") == datetime(2026, 2, 21, 3, 4, 5, tzinfo=UTC)
    assert converter("DateTime64(3, 'UTC')")("2026-02-21 03:04:05.123").microsecond == 123000
    assert converter("Nullable(Date)")(None) is None
    assert converter("LowCardinality(Nullable(String))")("x") == "x"
    assert converter("Array(Date)")(["2026-01-01"]) == [date(2026, 1, 1)]
    assert converter("Tuple(String, Date)")(["a", "2026-01-01"]) == ("a", date(2026, 1, 1))
    assert converter("Map(String, UInt64)")({"a": "1"}) == {"a": 1}
    assert converter("Bool")(True) is True
    assert converter("Enum8('a' = 1, 'b,c' = 2)")("b,c") == "b,c"


def test_convert_rows_uses_the_meta_types() -> None:
    payload = (
        b'{"meta": [{"name": "c", "type": "String"}, {"name": "d", "type": "Date"},'
        b' {"name": "n", "type": "UInt64"}], "data": [["x", "2026-01-02", "7"]], "rows": 1}'
    )
    assert convert_rows(payload) == [("x", date(2026, 1, 2), 7)]
    assert convert_rows(b"") == []
