"""A cluster of shards behind the one ClickHouse port (`shards:` in a cluster's configuration).

Shepherd talks to every shard's own endpoint: a command (a delete, a KILL) runs on every shard at
once and returns when all have answered; a query returns every shard's rows, in shard order, so a
caller reading a cluster-wide count sums them (`bot.purge.target`, `bot.purge.key_ranges`,
`bot.verify.service` do). A shard that fails is named in the error; the others' answers do not
hide it. Each shard evaluates a query on its own data: the scores' filter (`scorecard_id IN (SELECT
... FROM scorecards)`) needs a scorecard's scores on its shard (sharded by customer or scorecard).
Inserts are refused: which shard a row belongs to is the cluster's sharding key, not Shepherd's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.adapters.ports import ClickHouse
from bot.errors import ShepherdError, UpstreamError

T = TypeVar("T")


class ShardFailed(UpstreamError):
    """One or more shards failed; `shards` names them."""

    def __init__(self, cluster: str, failures: list[tuple[str, str]]) -> None:
        self.shards = [name for name, _ in failures]
        said = "; ".join(f"shard {name}: {reason}" for name, reason in failures)
        super().__init__(f"cluster {cluster}: {said}")


def _reason(err: BaseException) -> str:
    text = err.message if isinstance(err, ShepherdError) else (str(err) or type(err).__name__)
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


class ShardedClickHouse:
    """Every shard of one cluster, each its own connection to the same database."""

    def __init__(self, cluster: str, shards: Sequence[tuple[str, ClickHouse]]) -> None:
        if not shards:
            raise ValueError("a sharded cluster needs at least one shard")
        self.cluster = cluster
        self.shards = list(shards)

    def __repr__(self) -> str:
        return f"ShardedClickHouse({self.cluster!r}, shards={[n for n, _ in self.shards]!r})"

    @property
    def database(self) -> str:
        return self.shards[0][1].database

    def each(self, fn: Callable[[ClickHouse], T], only: Sequence[str] | None = None) -> list[tuple[str, T]]:
        """`fn` on every shard (or those named in `only`) at once; all are awaited, then any failure is raised
        naming every shard that failed."""
        shards = [(n, ch) for n, ch in self.shards if only is None or n in only]
        with ThreadPoolExecutor(max_workers=len(shards) or 1, thread_name_prefix="shard") as pool:
            futures = [(name, pool.submit(fn, ch)) for name, ch in shards]
            done: list[tuple[str, T]] = []
            failed: list[tuple[str, str]] = []
            for name, future in futures:
                try:
                    done.append((name, future.result()))
                except Exception as err:  # every shard's outcome is collected before any is reported
                    failed.append((name, _reason(err)))
        if failed:
            raise ShardFailed(self.cluster, failed)
        return done

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [row for _, rows in self.each(lambda ch: ch.query(sql, params)) for row in rows]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.each(lambda ch: ch.command(sql, params))

    def insert_csv(self, table: str, columns: Sequence[str], csv_data: bytes) -> int:
        raise UpstreamError(f"cluster {self.cluster} is sharded (shards: in its configuration): Shepherd does not"
                            " insert into it (a row's shard is the cluster's sharding key); backfill through a"
                            " Distributed table on a cluster configured with regions")

    def close(self) -> None:
        for _, ch in self.shards:
            with contextlib.suppress(Exception):  # closing is best effort; a broken shard is already reported
                ch.close()


def each_shard(ch: ClickHouse, fn: Callable[[ClickHouse], T], only: Sequence[str] | None = None
               ) -> list[tuple[str, T]]:
    """`fn` on every shard of a sharded cluster, or on the one server (named "") of any other."""
    if isinstance(ch, ShardedClickHouse):
        return ch.each(fn, only)
    return [("", fn(ch))]


def shard_names(ch: ClickHouse) -> list[str]:
    return [n for n, _ in ch.shards] if isinstance(ch, ShardedClickHouse) else [""]
