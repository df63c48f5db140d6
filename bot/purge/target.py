"""One purge chunk's table on one cluster: its filter (appeal rows, day span, sort-key range), its
partition, and the mutation that deletes it, found again by its tag.

A key-range chunk (commands/key_chunks.py) adds `(key columns) >= lo` and `< hi` to the appeal filter,
values bound with the columns' own types; its recount reads only its partition (`_partition_id`) and
its delete names it (`IN PARTITION ID`), so no mutation reads or rewrites another month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table, check_ident
from bot.config import TargetTables
from bot.purge.key_ranges import APPEAL, appeal_scores
from bot.temporal.models import ChunkSpec

PARTITION_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Target:
    """One chunk's table on one cluster: where to delete, and how to find the mutation."""

    ch: ClickHouse
    name: str  # the table's name in ch.database
    where: str  # the chunk's filter, values bound from `params`
    params: dict[str, Any]
    tag: str
    partition: str | None = None  # partition ID the delete is scoped to; None: the whole table

    @property
    def qualified(self) -> str:
        return ch_table(self.ch.database, self.name)

    @property
    def keys(self) -> dict[str, Any]:
        return {"d": self.ch.database, "t": self.name}

    @property
    def counted(self) -> str:
        """The filter a recount uses: the chunk's rows, in its partition only."""
        return f"{self.where} AND _partition_id = '{self.partition}'" if self.partition else self.where

    @property
    def in_partition(self) -> str:
        return f" IN PARTITION ID '{self.partition}'" if self.partition else ""

    def live(self) -> int:
        return int(self.ch.query(f"SELECT count() FROM {self.qualified} WHERE {self.counted}", self.params)[0][0])

    def unfinished(self) -> int:
        return int(self.ch.query("SELECT count() FROM system.mutations WHERE database = {d:String}"
                                 " AND table = {t:String} AND NOT is_done", self.keys)[0][0])

    def guard(self, previous: Target | None) -> tuple[int, int, int]:
        """One round trip: (live rows, live rows of `previous` or 0, unfinished mutations of the table)."""
        prev = f"(SELECT count() FROM {previous.qualified} WHERE {previous.counted})" if previous else "0"
        row = self.ch.query(
            f"SELECT (SELECT count() FROM {self.qualified} WHERE {self.counted}), {prev}, (SELECT count()"
            " FROM system.mutations WHERE database = {d:String} AND table = {t:String} AND NOT is_done)",
            {**self.params, **(previous.params if previous else {}), **self.keys})[0]
        return int(row[0]), int(row[1]), int(row[2])

    def status(self, mutation_id: str | None) -> tuple[str, bool, str, int] | None:
        """(mutation_id, is_done, latest_fail_reason, parts_to_do) of our mutation: by id, or by tag."""
        which = "mutation_id = {m:String}" if mutation_id else "position(command, {needle:String}) > 0"
        rows = self.ch.query(
            "SELECT mutation_id, is_done, latest_fail_reason, parts_to_do FROM system.mutations"
            f" WHERE database = {{d:String}} AND table = {{t:String}} AND {which} ORDER BY create_time DESC LIMIT 1",
            {**self.keys, "m": mutation_id or "", "needle": f"'{self.tag}'"})
        return (str(rows[0][0]), bool(rows[0][1]), str(rows[0][2] or ""), int(rows[0][3])) if rows else None

    def find(self) -> tuple[str, bool, str] | None:
        """(mutation_id, is_done, latest_fail_reason) of this chunk's newest mutation, if any."""
        rows = self.ch.query(
            "SELECT mutation_id, is_done, latest_fail_reason FROM system.mutations WHERE database = {d:String}"
            " AND table = {t:String} AND position(command, {needle:String}) > 0 ORDER BY create_time DESC LIMIT 1",
            {**self.keys, "needle": f"'{self.tag}'"})
        return (str(rows[0][0]), bool(rows[0][1]), str(rows[0][2] or "")) if rows else None

    def issue(self, strategy: str) -> None:
        tagged = f"{self.where} AND {{tag:String}} != ''"
        params = {**self.params, "tag": self.tag}
        if strategy == "lightweight":
            self.ch.command(f"DELETE FROM {self.qualified}{self.in_partition} WHERE {tagged}"
                            " SETTINGS lightweight_deletes_sync = 0", params)
        else:
            # The scores' filter reads the scorecards table: on a Replicated table that needs
            # allow_nondeterministic_mutations (the scorecards do not change while their scores go).
            self.ch.command(f"ALTER TABLE {self.qualified} DELETE{self.in_partition} WHERE {tagged}"
                            " SETTINGS mutations_sync = 0, allow_nondeterministic_mutations = 1", params)

    def kill(self, mutation_id: str) -> None:
        self.ch.command("KILL MUTATION WHERE database = {d:String} AND table = {t:String}"
                        " AND mutation_id = {m:String}", {**self.keys, "m": mutation_id})


def key_range(c: ChunkSpec, p: str) -> tuple[str, dict[str, Any]]:
    """` AND key >= lo AND key < hi` for a key-range chunk (empty for a whole-day one), and its values."""
    cols = ", ".join(check_ident(k) for k in c.key)
    sql, params = "", dict[str, Any]()
    for bound, op, values in (("lo", ">=", c.lo), ("hi", "<", c.hi)):
        if values:
            names = [f"{p}k{bound}{i}" for i in range(len(values))]
            bound_values = ", ".join(f"{{{n}:{t}}}" for n, t in zip(names, c.key_types, strict=True))
            sql += f" AND ({cols}) {op} ({bound_values})"
            params.update(zip(names, values, strict=True))
    return sql, params


def chunk_target(ch: ClickHouse, names: TargetTables, c: ChunkSpec, types: list[int], tag: str,
                 p: str = "") -> Target:
    """The chunk's table and filter; `p` prefixes its parameter names (two filters, one query)."""
    if c.partition is not None and not PARTITION_ID.match(c.partition):
        raise ValueError(f"chunk {c.index}: partition ID {c.partition!r} is not a plain ID")
    appeal = APPEAL.replace("{", "{" + p) if p else APPEAL
    keyed, params = key_range(c, p)
    params.update({f"{p}c": c.customer, f"{p}lo": c.start, f"{p}hi": c.end, f"{p}types": list(types)})
    if c.table == "scorecards":
        return Target(ch, names.scorecards, appeal + keyed, params, tag, c.partition)
    # Scorecard ids are unique, so the scores' filter needs only the id (and the day range for pruning).
    return Target(ch, names.scores, appeal_scores(ch_table(ch.database, names.scorecards), p) + keyed, params,
                  tag, c.partition)
