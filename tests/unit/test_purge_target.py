"""The statements a key-range chunk issues: its partition named, its key range bound with the columns' types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from bot.adapters.ports import ClickHouse
from bot.config import TargetTables
from bot.purge.target import chunk_target
from bot.temporal.models import ChunkSpec


class RecordingClickHouse(ClickHouse):
    """Answers every count with 0 and records each statement."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    @property
    def database(self) -> str:
        return "db"

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.sent.append((sql, dict(params or {})))
        return [(0, 0, 0)]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.sent.append((sql, dict(params or {})))

    def insert_csv(self, table: str, columns: Sequence[str], csv_data: bytes) -> int:
        raise AssertionError("a purge inserts nothing")


SCORES = ChunkSpec(index=3, customer="oportun", table="scores", start="2026-01-04", end="2026-01-05", rows=4000,
                   partition="202601", key=["day", "scorecard_id", "criterion_id"],
                   key_types=["Date", "UInt64", "UInt32"], lo=["2026-01-04", "61085", "8"],
                   hi=["2026-01-05", "61441", "5"])


@pytest.mark.parametrize(("strategy", "verb"), [
    ("mutation", "ALTER TABLE `db`.`scores` DELETE IN PARTITION ID '202601'"),
    ("lightweight", "DELETE FROM `db`.`scores` IN PARTITION ID '202601'"),
])
def test_delete_names_its_partition_and_key_range(strategy: str, verb: str) -> None:
    ch = RecordingClickHouse()
    target = chunk_target(ch, TargetTables(), SCORES, [1, 2, 3], "shepherd:j:us-east-2:3")
    target.issue(strategy)
    sql, params = ch.sent[-1]
    assert sql.startswith(verb), sql
    assert "(day, scorecard_id, criterion_id) >= ({klo0:Date}, {klo1:UInt64}, {klo2:UInt32})" in sql
    assert "(day, scorecard_id, criterion_id) < ({khi0:Date}, {khi1:UInt64}, {khi2:UInt32})" in sql
    assert (params["klo1"], params["khi2"], params["tag"]) == ("61085", "5", "shepherd:j:us-east-2:3")


def test_recount_reads_only_the_partition_and_both_key_ranges() -> None:
    ch = RecordingClickHouse()
    previous = ChunkSpec(index=2, customer="oportun", table="scores", start="2026-01-03", end="2026-01-04", rows=4000,
                         partition="202601", key=SCORES.key, key_types=SCORES.key_types, hi=SCORES.lo)
    target = chunk_target(ch, TargetTables(), SCORES, [1, 2, 3], "t")
    target.guard(chunk_target(ch, TargetTables(), previous, [1, 2, 3], "t", "p_"))
    sql, params = ch.sent[-1]
    assert sql.count("_partition_id = '202601'") == 2
    assert "{p_khi0:Date}" in sql and "{p_klo0" not in sql  # the previous chunk starts at its first day
    assert params["p_khi1"] == params["klo1"] == "61085"  # the two ranges meet at one key


def test_a_partition_id_that_is_not_plain_is_refused() -> None:
    bad = ChunkSpec(index=0, customer="c", table="scorecards", start="2026-01-01", end="2026-01-01", rows=1,
                    partition="2026' OR 1=1 --")
    with pytest.raises(ValueError, match="not a plain ID"):
        chunk_target(RecordingClickHouse(), TargetTables(), bad, [1], "t")
