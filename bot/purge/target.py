"""One purge chunk's table on one cluster: its filter (appeal rows, day span, sort-key range), its
partition, and the mutation that deletes it, found again by its tag.

A key-range chunk (commands/key_chunks.py) adds `(key columns) >= lo` and `< hi` to the appeal filter,
values bound with the columns' own types; its recount reads only its partition (`_partition_id`) and
its delete names it (`IN PARTITION ID`), so no mutation reads or rewrites another month.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.adapters.ports import ClickHouse
from bot.adapters.shards import ShardedClickHouse, each_shard
from bot.adapters.sql import ch_source, ch_table, check_ident, quote_ident
from bot.config import TargetTables
from bot.purge.key_ranges import APPEAL, appeal_scores
from bot.temporal.models import ChunkSpec

PARTITION_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class MutationState:
    """Our mutation on the whole cluster: done only when done on every node (shard, or replica ON CLUSTER)."""

    id: str  # its id; on several nodes "node=id,node=id"
    done: bool
    fail_reason: str  # "" or each failing node's reason, named
    parts_to_do: int
    missing: tuple[str, ...] = ()  # shards that hold no mutation of ours (an attempt stopped between shards)


@dataclass
class Target:
    """One chunk's table on one cluster: where to delete, and how to find the mutation.

    Topologies: one server; `shards` (`ch` is a `ShardedClickHouse`: counts are summed over the shards, the
    delete goes to every shard, the mutation is followed on each by its tag); `on_cluster` (counts read
    `cluster(NAME, db, table)`, the delete is `ALTER TABLE db.table ON CLUSTER NAME`, completion is read
    from every replica's `system.mutations` through `clusterAllReplicas`)."""

    ch: ClickHouse
    name: str  # the table's name in ch.database (each node's local table)
    where: str  # the chunk's filter, values bound from `params`
    params: dict[str, Any]
    tag: str
    partition: str | None = None  # partition ID the delete is scoped to; None: the whole table
    on_cluster: str | None = None  # the ClickHouse cluster its mutations run ON

    @property
    def qualified(self) -> str:
        return ch_table(self.ch.database, self.name)

    @property
    def source(self) -> str:
        """What a count reads: the table, or on a ClickHouse cluster one replica of every shard of it."""
        return ch_source(self.ch.database, self.name, self.on_cluster)

    @property
    def mutations(self) -> str:
        return f"clusterAllReplicas('{check_ident(self.on_cluster)}', system.mutations)" if self.on_cluster \
            else "system.mutations"

    @property
    def on(self) -> str:
        return f" ON CLUSTER {quote_ident(self.on_cluster)}" if self.on_cluster else ""

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
        rows = self.ch.query(f"SELECT count() FROM {self.source} WHERE {self.counted}", self.params)
        return sum(int(r[0]) for r in rows)  # a sharded cluster answers one row per shard

    def unfinished(self) -> int:
        """The longest queue of unfinished mutations of the table on any node."""
        rows = self.ch.query(f"SELECT count() FROM {self.mutations} WHERE database = {{d:String}}"
                             " AND table = {t:String} AND NOT is_done", self.keys)
        return max(int(r[0]) for r in rows)

    def guard(self, previous: Target | None) -> tuple[int, int, int]:
        """One round trip: (live rows, live rows of `previous` or 0, unfinished mutations of the table)."""
        prev = f"(SELECT count() FROM {previous.source} WHERE {previous.counted})" if previous else "0"
        rows = self.ch.query(
            f"SELECT (SELECT count() FROM {self.source} WHERE {self.counted}), {prev}, (SELECT count()"
            f" FROM {self.mutations} WHERE database = {{d:String}} AND table = {{t:String}} AND NOT is_done)",
            {**self.params, **(previous.params if previous else {}), **self.keys})
        return sum(int(r[0]) for r in rows), sum(int(r[1]) for r in rows), max(int(r[2]) for r in rows)

    def status(self, mutation_id: str | None) -> MutationState | None:
        """Our mutation: on one server by id (or by tag before the id is known); on several nodes by tag."""
        several = self.on_cluster is not None or isinstance(self.ch, ShardedClickHouse)
        which = "mutation_id = {m:String}" if mutation_id and not several else "position(command, {needle:String}) > 0"
        node = "hostName()" if self.on_cluster else "''"
        sql = (f"SELECT {node} AS node, argMax(mutation_id, create_time), argMax(is_done, create_time),"
               " argMax(latest_fail_reason, create_time), argMax(parts_to_do, create_time)"
               f" FROM {self.mutations} WHERE database = {{d:String}} AND table = {{t:String}} AND {which}"
               " GROUP BY node" if several else
               "SELECT mutation_id, is_done, latest_fail_reason, parts_to_do FROM system.mutations"
               f" WHERE database = {{d:String}} AND table = {{t:String}} AND {which} ORDER BY create_time DESC LIMIT 1")
        params = {**self.keys, "m": mutation_id or "", "needle": f"'{self.tag}'"}
        if not several:
            rows = self.ch.query(sql, params)
            return MutationState(str(rows[0][0]), bool(rows[0][1]), str(rows[0][2] or ""), int(rows[0][3])) \
                if rows else None
        answers = each_shard(self.ch, lambda ch: ch.query(sql, params))
        nodes = [(f"shard {shard}" if shard else f"replica {r[0]}", r[1:]) for shard, rows in answers for r in rows]
        if not nodes:
            return None
        missing = tuple(shard for shard, rows in answers if shard and not rows)
        expected = self._replicas() if self.on_cluster else len(nodes)
        return MutationState(
            ",".join(f"{name}={r[0]}" for name, r in nodes),
            all(bool(r[1]) for _, r in nodes) and not missing and len(nodes) >= expected,
            "; ".join(f"{name}: {r[2]}" for name, r in nodes if r[2]),
            sum(int(r[3]) for _, r in nodes), missing)

    def _replicas(self) -> int:
        return int(self.ch.query("SELECT count() FROM system.clusters WHERE cluster = {n:String}",
                                 {"n": self.on_cluster})[0][0])

    def find(self) -> MutationState | None:
        """This chunk's newest mutation (by its tag), if any."""
        return self.status(None)

    def issue(self, strategy: str, only: Sequence[str] | None = None) -> None:
        """The delete, on every shard (or the `only` ones that lack it): all issued, then any failure raised."""
        tagged = f"{self.where} AND {{tag:String}} != ''"
        params = {**self.params, "tag": self.tag}
        if strategy == "lightweight":
            sql = (f"DELETE FROM {self.qualified}{self.on}{self.in_partition} WHERE {tagged}"
                   " SETTINGS lightweight_deletes_sync = 0")
        else:
            # The scores' filter reads the scorecards table: on a Replicated table that needs
            # allow_nondeterministic_mutations (the scorecards do not change while their scores go).
            sql = (f"ALTER TABLE {self.qualified}{self.on} DELETE{self.in_partition} WHERE {tagged}"
                   " SETTINGS mutations_sync = 0, allow_nondeterministic_mutations = 1")
        each_shard(self.ch, lambda ch: ch.command(sql, params), only)

    def kill(self, mutation_id: str) -> None:
        """Our mutation: by id on one server; by tag on every node of a cluster."""
        if self.on_cluster is None and not isinstance(self.ch, ShardedClickHouse):
            self.ch.command("KILL MUTATION WHERE database = {d:String} AND table = {t:String}"
                            " AND mutation_id = {m:String}", {**self.keys, "m": mutation_id})
            return
        self.ch.command(f"KILL MUTATION{self.on} WHERE database = {{d:String}} AND table = {{t:String}}"
                        " AND position(command, {needle:String}) > 0", {**self.keys, "needle": f"'{self.tag}'"})


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
                 p: str = "", on_cluster: str | None = None) -> Target:
    """The chunk's table and filter; `p` prefixes its parameter names (two filters, one query)."""
    if c.partition is not None and not PARTITION_ID.match(c.partition):
        raise ValueError(f"chunk {c.index}: partition ID {c.partition!r} is not a plain ID")
    appeal = APPEAL.replace("{", "{" + p) if p else APPEAL
    keyed, params = key_range(c, p)
    params.update({f"{p}c": c.customer, f"{p}lo": c.start, f"{p}hi": c.end, f"{p}types": list(types)})
    if c.table == "scorecards":
        return Target(ch, names.scorecards, appeal + keyed, params, tag, c.partition, on_cluster)
    # Scorecard ids are unique, so the scores' filter needs only the id (and the day range for pruning).
    return Target(ch, names.scores, appeal_scores(ch_table(ch.database, names.scorecards), p) + keyed, params,
                  tag, c.partition, on_cluster)
