"""The purge chunk activity: recount (drift guard), wait for the mutation queue, delete, wait.

Every delete carries a tag unique to its chunk (`shepherd:{job}:{cluster}:{index}`, bound as a
parameter in a tautology `{tag:String} != ''`); ClickHouse keeps it in `system.mutations.command`.
So any attempt finds the mutation an earlier attempt issued, even one killed before it could
heartbeat the mutation's id, and follows it instead of issuing another: a chunk's delete is issued
once. Both strategies are asynchronous mutations (`ALTER TABLE ... DELETE` with
`mutations_sync = 0`, `DELETE FROM` with `lightweight_deletes_sync = 0`), polled while heartbeating.
A cancel requested by the workflow kills the chunk's own mutation; a worker shutdown or a timed-out
attempt leaves it running for the next attempt to follow.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table
from bot.temporal.deps import ActivityDeps
from bot.temporal.models import ChunkInput, ChunkResult

# Small mutations finish in tens of milliseconds, big ones in minutes: poll from 10 ms, growing by half.
POLL_FIRST_S, POLL_GROWTH, POLL_MAX_S = 0.01, 1.5, 1.0
QUEUE_POLL_S = 1.0  # while other mutations fill the table's queue
RECOUNT_EVERY_S = 10.0  # while a long mutation runs, recount its rows this often for `rows_deleted`
FIND_TRIES = 20  # a just-issued mutation shows up in system.mutations at once; allow for a lag


def chunk_tag(inp: ChunkInput) -> str:
    """The chunk's tag, written into its delete's WHERE (characters that need no quoting only)."""
    raw = f"shepherd:{inp.job_id}:{inp.cluster}:{inp.chunk.index}"
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)


def drift_reason(inp: ChunkInput, live: int) -> str:
    c = inp.chunk
    return (
        f"the data changed since approval: chunk {c.index} of cluster {inp.cluster} ({c.customer} {c.table} "
        f"{c.start}..{c.end}) has {live:,} live rows, plan said {c.rows:,} (tolerance {inp.drift_tolerance:.0%});"
        " nothing more was deleted"
    )


def last_heartbeat(details: Any) -> dict[str, Any]:
    return dict(details[0]) if details and isinstance(details[0], dict) else {}


@dataclass
class Target:
    """One chunk's table on one cluster: where to delete, and how to find the mutation."""

    ch: ClickHouse
    name: str  # the table's name in ch.database
    where: str  # the chunk's filter, values bound from `params`
    params: dict[str, Any]
    tag: str

    @property
    def qualified(self) -> str:
        return ch_table(self.ch.database, self.name)

    @property
    def keys(self) -> dict[str, Any]:
        return {"d": self.ch.database, "t": self.name}

    def live(self) -> int:
        return int(self.ch.query(f"SELECT count() FROM {self.qualified} WHERE {self.where}", self.params)[0][0])

    def unfinished(self) -> int:
        return int(self.ch.query("SELECT count() FROM system.mutations WHERE database = {d:String}"
                                 " AND table = {t:String} AND NOT is_done", self.keys)[0][0])

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
            self.ch.command(f"DELETE FROM {self.qualified} WHERE {tagged} SETTINGS lightweight_deletes_sync = 0",
                            params)
        else:
            # The scores' filter reads the scorecards table: on a Replicated table that needs
            # allow_nondeterministic_mutations (the scorecards do not change while their scores go).
            self.ch.command(f"ALTER TABLE {self.qualified} DELETE WHERE {tagged}"
                            " SETTINGS mutations_sync = 0, allow_nondeterministic_mutations = 1", params)

    def kill(self, mutation_id: str) -> None:
        self.ch.command("KILL MUTATION WHERE database = {d:String} AND table = {t:String}"
                        " AND mutation_id = {m:String}", {**self.keys, "m": mutation_id})


def _cancelled(target: Target, mutation_id: str | None) -> CancelledError:
    """The activity was cancelled: kill our mutation only if the workflow asked for the cancel."""
    details = activity.cancellation_details()
    if mutation_id and details is not None and details.cancel_requested:
        target.kill(mutation_id)
    return CancelledError("purge chunk cancelled")


class PurgeActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    def all(self) -> list[Any]:
        return [self.purge_chunk]

    def target(self, ch: ClickHouse, inp: ChunkInput) -> Target:
        names = self.deps.config.target
        c = inp.chunk
        appeal = ("customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date}"
                  " AND scorecard_type IN {types:Array(UInt8)}")
        params = {"c": c.customer, "lo": c.start, "hi": c.end, "types": list(inp.types)}
        if c.table == "scorecards":
            return Target(ch, names.scorecards, appeal, params, chunk_tag(inp))
        # Scorecard ids are unique, so the scores' filter needs only the id (and the day range for pruning).
        cards = ch_table(ch.database, names.scorecards)
        where = ("customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date}"
                 f" AND scorecard_id IN (SELECT scorecard_id FROM {cards} WHERE {appeal})")
        return Target(ch, names.scores, where, params, chunk_tag(inp))

    @activity.defn(name="purge_chunk", no_thread_cancel_exception=True)
    def purge_chunk(self, inp: ChunkInput) -> ChunkResult:
        began = time.monotonic()
        info = activity.info()
        last = last_heartbeat(info.heartbeat_details)
        found = self.deps.lookup.connect(inp.cluster)
        target, c = self.target(found.client, inp), inp.chunk
        beat = {"chunk": c.index, "region": found.region, "tag": target.tag}
        # An earlier attempt may have issued the delete (whether or not it lived to heartbeat it).
        mine = target.find() if info.attempt > 1 or last else None
        if mine is not None and mine[2]:
            target.kill(mine[0])  # it keeps failing: clear it, and delete afresh below
            mine = None
        if mine is None:
            live = target.live()
            if live > c.rows * (1 + inp.drift_tolerance):
                raise ApplicationError(drift_reason(inp, live), type="DataDrift", non_retryable=True)
            if live == 0:
                return ChunkResult(c.index, 0, None, round(time.monotonic() - began, 3), found.region)
            self._wait_for_queue(target, inp, beat)
            target.issue(inp.strategy)
            mutation_id = self._located(target)
        else:
            mutation_id = mine[0]
            live = int(last.get("live", c.rows))
        beat.update(mutation_id=mutation_id, live=live, rows_deleted=0)
        activity.heartbeat(beat)
        deleted = self._wait_for(target, mutation_id, live, beat)
        return ChunkResult(c.index, deleted, mutation_id, round(time.monotonic() - began, 3), found.region)

    def _located(self, target: Target) -> str:
        for _ in range(FIND_TRIES):
            mine = target.find()
            if mine is not None:
                return mine[0]
            time.sleep(0.05)
        raise ApplicationError(f"the delete on {target.qualified} left no mutation to follow ({target.tag})")

    def _wait_for_queue(self, target: Target, inp: ChunkInput, beat: dict[str, Any]) -> None:
        """No new mutation while the table has more than `max_unfinished_mutations` unfinished."""
        while (unfinished := target.unfinished()) > inp.max_unfinished_mutations:
            activity.heartbeat({**beat, "waiting_for_queue": unfinished})
            activity.wait_for_cancelled_sync(QUEUE_POLL_S)
            if activity.is_cancelled():
                raise _cancelled(target, None)

    def _wait_for(self, target: Target, mutation_id: str, live: int, beat: dict[str, Any]) -> int:
        """Poll our mutation until done; returns the rows it deleted (the live rows it was issued for)."""
        params = {**target.keys, "m": mutation_id}
        delay, recounted = POLL_FIRST_S, time.monotonic()
        while True:
            rows = target.ch.query(
                "SELECT is_done, latest_fail_reason, parts_to_do FROM system.mutations"
                " WHERE database = {d:String} AND table = {t:String} AND mutation_id = {m:String}", params)
            if not rows:  # killed by someone else, or cleaned up: the next attempt recounts and decides
                raise ApplicationError(f"mutation {mutation_id} on {target.qualified} disappeared before it was done")
            is_done, fail_reason, parts = rows[0]
            if is_done:
                return live
            if fail_reason:
                target.kill(mutation_id)  # the next attempt deletes afresh
                raise ApplicationError(f"mutation {mutation_id} on {target.qualified} failed: {fail_reason}",
                                       type="MutationFailed")
            if time.monotonic() - recounted >= RECOUNT_EVERY_S:
                beat["rows_deleted"], recounted = max(live - target.live(), 0), time.monotonic()
            activity.heartbeat({**beat, "parts_to_do": parts})
            activity.wait_for_cancelled_sync(delay)
            if activity.is_cancelled():
                raise _cancelled(target, mutation_id)
            delay = min(delay * POLL_GROWTH, POLL_MAX_S)
