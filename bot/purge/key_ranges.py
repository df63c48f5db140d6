"""What the key-range purge planner needs from one cluster, read with the index.

Each table's sort key and partition key come from `system.tables` (types from `system.columns`); the
rows to delete are counted per (customer, partition, day), one grouped query per table; then the run
boundaries inside a day are looked up in one query per day, numbering its rows in the table's key
order. Only the days with a cut are read, and of them only the key columns. The appeal filter is the
one the purge activity deletes with, so the offsets and the chunk's recount agree.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from itertools import islice
from typing import Any

from bot.adapters.ports import ClickHouse
from bot.adapters.shards import ShardedClickHouse, each_shard
from bot.adapters.sql import ch_source, ch_table, check_ident
from bot.config import TargetTables
from bot.errors import UserInputError
from commands.key_chunks import Cut, TableDays, TableKey
from commands.models import DateRange

APPEAL = "customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date} AND scorecard_type IN {types:Array(UInt8)}"


def appeal_scores(cards: str, p: str = "") -> str:
    """The scores to delete: those of the appeal scorecards of the same customer and days."""
    appeal = APPEAL.replace("{", "{" + p) if p else APPEAL
    return (f"customer_id = {{{p}c:String}} AND day BETWEEN {{{p}lo:Date}} AND {{{p}hi:Date}}"
            f" AND scorecard_id IN (SELECT scorecard_id FROM {cards} WHERE {appeal})")


class KeyRangeReader:
    """Reads the whole cluster: on a `ShardedClickHouse` every shard's rows (summed here, and the cut keys
    found in the shards' merged key order); with `on_cluster`, through `cluster(NAME, db, table)`."""

    def __init__(self, ch: ClickHouse, cluster: str, names: TargetTables, on_cluster: str | None = None) -> None:
        self.ch, self.cluster, self.on_cluster = ch, cluster, on_cluster
        self.tables = {"scorecards": names.scorecards, "scores": names.scores}
        self.cards = ch_table(ch.database, names.scorecards)

    def source(self, name: str) -> str:
        return ch_source(self.ch.database, name, self.on_cluster)

    def table_keys(self) -> tuple[dict[tuple[str, str], TableKey], dict[str, str]]:
        """Each table's sort key after customer_id, and its partition key ('' when none)."""
        found = {str(r[0]): (str(r[1]), str(r[2])) for r in self.ch.query(
            "SELECT name, partition_key, sorting_key FROM system.tables WHERE database = {d:String}"
            " AND name IN {t:Array(String)}", {"d": self.ch.database, "t": list(self.tables.values())})}
        types = {(str(r[0]), str(r[1])): str(r[2]) for r in self.ch.query(
            "SELECT table, name, type FROM system.columns WHERE database = {d:String}"
            " AND table IN {t:Array(String)}", {"d": self.ch.database, "t": list(self.tables.values())})}
        keys: dict[tuple[str, str], TableKey] = {}
        partitions: dict[str, str] = {}
        for table, name in self.tables.items():
            if name not in found:
                raise UserInputError(f"cluster {self.cluster}: table {self.ch.database}.{name} not found")
            partitions[table], sorting = found[name]
            columns = [c.strip() for c in sorting.split(",")]
            if columns[:2] != ["customer_id", "day"] or not all(c.isidentifier() for c in columns):
                raise UserInputError(f"cluster {self.cluster}: {name} is sorted by ({sorting}); a key-range purge"
                                     " needs a sort key starting with (customer_id, day)")
            rest = tuple(check_ident(c) for c in columns[1:])
            keys[(self.cluster, table)] = TableKey(rest, tuple(types[(name, c)] for c in rest))
        return keys, partitions

    def table_days(self, customers: Sequence[str], rng: DateRange, types: Sequence[int],
                   partitions: dict[str, str]) -> list[TableDays]:
        """Rows to delete per (customer, table, partition), per day with rows."""
        where = APPEAL.replace("customer_id = {c:String}", "customer_id IN {cs:Array(String)}")
        params = {"cs": list(customers), "lo": rng.start, "hi": rng.end, "types": list(types)}
        out: list[TableDays] = []
        for table, name in self.tables.items():
            part = "_partition_id" if partitions[table] else "''"
            source = self.source(name)
            filt = (f"WHERE {where}" if table == "scorecards" else
                    f"PREWHERE scorecard_id IN (SELECT scorecard_id FROM {self.cards} WHERE {where})"
                    " WHERE customer_id IN {cs:Array(String)} AND day BETWEEN {lo:Date} AND {hi:Date}")
            rows = self.ch.query(
                f"SELECT customer_id, p, arrayMap(t -> t.1, r), arrayMap(t -> t.2, r) FROM ("
                f" SELECT customer_id, p, arraySort(groupArray((day, toUInt64(n)))) AS r FROM ("
                f"  SELECT customer_id, {part} AS p, day, count() AS n FROM {source} {filt}"
                "   GROUP BY customer_id, p, day) GROUP BY customer_id, p)", params)
            merged: dict[tuple[str, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
            for c, p, days, ns in rows:  # one row per (customer, partition) from each shard
                for d, n in zip(days, ns, strict=True):
                    merged[(str(c), str(p))][_as_date(d)] += int(n)
            out += [TableDays(self.cluster, c, table, p, sorted(per), [per[d] for d in sorted(per)])
                    for (c, p), per in merged.items()]
        return out

    def cut_keys(self, cuts: Sequence[Cut], keys: dict[tuple[str, str], TableKey],
                 types: Sequence[int]) -> dict[Cut, tuple[str, ...]]:
        """The key of the row at each cut: one query per day with cuts, numbering that day's rows in key
        order and keeping those at the cuts' offsets. One after another: a clickhouse-connect client runs
        one query at a time in its session."""
        by_day: dict[tuple[str, str, str, date], list[Cut]] = defaultdict(list)
        for cut in cuts:
            by_day[(cut.customer, cut.table, cut.partition, cut.day)].append(cut)
        found: dict[Cut, tuple[str, ...]] = {}
        for day_cuts in by_day.values():
            found.update(self._day_cut_keys(day_cuts, keys, types))
        return found

    def _day_cut_keys(self, cuts: list[Cut], keys: dict[tuple[str, str], TableKey],
                      types: Sequence[int]) -> dict[Cut, tuple[str, ...]]:
        first = cuts[0]
        cols = keys[(self.cluster, first.table)].columns
        name = self.source(self.tables[first.table])
        where = APPEAL if first.table == "scorecards" else appeal_scores(self.cards)
        part = " AND _partition_id = {p:String}" if first.partition else ""
        order = ", ".join(cols)
        if isinstance(self.ch, ShardedClickHouse):
            return self._merged_cut_keys(cuts, cols, f"{name} WHERE {where}{part}", types)
        rows = self.ch.query(
            f"SELECT k, {', '.join(f'toString({c})' for c in cols)} FROM ("
            f"SELECT {order}, row_number() OVER (ORDER BY customer_id, {order}) - 1 AS k"
            f" FROM {name} WHERE {where}{part}) WHERE k IN {{ks:Array(UInt64)}} ORDER BY k",
            {"c": first.customer, "lo": first.day, "hi": first.day, "types": list(types), "p": first.partition,
             "ks": sorted({c.offset for c in cuts})})
        at = {int(r[0]): tuple(str(v) for v in r[1:]) for r in rows}
        missing = [c.offset for c in cuts if c.offset not in at]
        if missing:
            raise UserInputError(f"cluster {self.cluster}: {first.customer} {first.table} changed while planning"
                                 f" (no row {missing[0]} on {first.day}); plan again")
        return {c: at[c.offset] for c in cuts}

    def _merged_cut_keys(self, cuts: list[Cut], cols: Sequence[str], rows_of: str,
                         types: Sequence[int]) -> dict[Cut, tuple[str, ...]]:
        """Shards: each shard's first rows of the day in key order (as far as the last cut), merged; the rows
        at the cuts' offsets in the merged order are the cluster's cut keys."""
        first, last = cuts[0], max(c.offset for c in cuts)
        order = ", ".join(cols)
        sql = (f"SELECT {order}, {', '.join(f'toString({c})' for c in cols)} FROM {rows_of}"
               f" ORDER BY {order} LIMIT {{n:UInt64}}")
        params = {"c": first.customer, "lo": first.day, "hi": first.day, "types": list(types),
                  "p": first.partition, "n": last + 1}
        width = len(cols)
        per_shard = [rows for _, rows in each_shard(self.ch, lambda ch: ch.query(sql, params))]
        merged = list(islice(heapq.merge(*per_shard, key=lambda r: r[:width]), last + 1))
        missing = [c.offset for c in cuts if c.offset >= len(merged)]
        if missing:
            raise UserInputError(f"cluster {self.cluster}: {first.customer} {first.table} changed while planning"
                                 f" (no row {missing[0]} on {first.day}); plan again")
        return {c: tuple(str(v) for v in merged[c.offset][width:]) for c in cuts}


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
