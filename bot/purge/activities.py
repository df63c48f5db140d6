"""The purge chunk activity: recount (drift guard), wait for the mutation queue, delete, wait.

Every delete carries a tag unique to its chunk (`shepherd:{job}:{cluster}:{index}`, bound as a
parameter in a tautology `{tag:String} != ''`); ClickHouse keeps it in `system.mutations.command`.
So any attempt finds the mutation an earlier attempt issued, even one killed before it could
heartbeat the mutation's id, and follows it instead of issuing another: a chunk's delete is issued
once. The queue check (`max_unfinished_mutations`, read from `system.mutations`) and the issue take
one turn of a fleet-wide lock per cluster table (`issue_lock.py`), so the cap holds however many
workers issue at once. Both strategies are asynchronous mutations (`ALTER TABLE ... DELETE` with
`mutations_sync = 0`, `DELETE FROM` with `lightweight_deletes_sync = 0`), polled while heartbeating.
A cancel requested by the workflow kills the chunk's own mutation; a worker shutdown or a timed-out
attempt leaves it running for the next attempt to follow.

The workflow may start a chunk while the chunk before it (on the other table) is still running; it
then passes that chunk as `previous`, and the guard recounts both in one query: a chunk never runs
after a chunk whose data changed. Polling is paced by how long this table's last mutations took.
"""

from __future__ import annotations

import re
import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from bot.adapters.ports import ClickHouse
from bot.purge.issue_lock import issue_turn
from bot.purge.target import Target, chunk_target
from bot.temporal.deps import ActivityDeps
from bot.temporal.drain import hand_back_if_stopping
from bot.temporal.keepalive import keepalive
from bot.temporal.models import ChunkInput, ChunkResult, ChunkSpec

# A mutation takes tens of milliseconds on a small part, minutes on a big one. The first poll comes
# at POLL_EARLY x the table's recent duration, then every POLL_STEP x it (at least POLL_MIN_S); past
# twice the expected time the interval grows by half up to POLL_MAX_S.
POLL_EARLY, POLL_STEP, POLL_MIN_S, POLL_GROWTH, POLL_MAX_S = 0.6, 0.1, 0.01, 1.5, 1.0
EXPECTED_FIRST_S = 0.1
_recent: dict[tuple[str, str], float] = {}  # (database, table) -> recent mutation seconds, this process
QUEUE_POLL_S = 1.0  # while other mutations fill the table's queue
TURN_POLL_S = 0.05  # while another issuer holds the table's turn (one ALTER and one lookup long)
RECOUNT_EVERY_S = 10.0  # while a long mutation runs, recount its rows this often for `rows_deleted`
FIND_TRIES = 20


def chunk_tag(inp: ChunkInput) -> str:
    """The chunk's tag, written into its delete's WHERE (characters that need no quoting only)."""
    raw = f"shepherd:{inp.job_id}:{inp.cluster}:{inp.chunk.index}"
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)


def drift_reason(inp: ChunkInput, live: int, c: ChunkSpec | None = None) -> str:
    c = c or inp.chunk
    return (
        f"the data changed since approval: chunk {c.index} of cluster {inp.cluster} ({c.customer} {c.table} "
        f"{c.start}..{c.end}) has {live:,} live rows, plan said {c.rows:,} (tolerance {inp.drift_tolerance:.0%});"
        " nothing more was deleted"
    )


def last_heartbeat(details: Any) -> dict[str, Any]:
    return dict(details[0]) if details and isinstance(details[0], dict) else {}


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

    def target(self, ch: ClickHouse, inp: ChunkInput, c: ChunkSpec | None = None, p: str = "") -> Target:
        """The chunk's (or `c`'s) table and filter; `p` prefixes its parameter names (two filters, one query)."""
        cluster = next((k for k in self.deps.config.clusters if k.name == inp.cluster), None)
        return chunk_target(ch, self.deps.config.target, c or inp.chunk, inp.types, chunk_tag(inp), p,
                            cluster.on_cluster if cluster else None)

    @activity.defn(name="purge_chunk", no_thread_cancel_exception=True)
    def purge_chunk(self, inp: ChunkInput) -> ChunkResult:
        began = time.monotonic()
        info = activity.info()
        last = last_heartbeat(info.heartbeat_details)
        found = self.deps.lookup.connect(inp.cluster)
        target, c = self.target(found.client, inp), inp.chunk
        beat: dict[str, Any] = {"chunk": c.index, "region": found.region, "tag": target.tag}
        mutation_id: str | None
        # The recount and the delete's issue are single long calls at production sizes: heartbeat meanwhile.
        with keepalive(lambda: beat):
            # An earlier attempt may have issued the delete (whether or not it lived to heartbeat it).
            mine = target.find() if info.attempt > 1 or last else None
            if mine is not None and mine.fail_reason:
                target.kill(mine.id)  # it keeps failing: clear it, and delete afresh below
                mine = None
            if mine is not None and mine.missing:
                target.issue(inp.strategy, only=mine.missing)  # an attempt stopped between shards: finish the fan-out
            if mine is None:
                previous = self.target(found.client, inp, inp.previous, "p_") if inp.previous else None
                live, previous_live, unfinished = target.guard(previous)
                self._seen_unfinished(inp, unfinished)
                if inp.previous is not None and previous_live > inp.previous.rows * (1 + inp.drift_tolerance):
                    raise ApplicationError(drift_reason(inp, previous_live, inp.previous),
                                           {"chunk": inp.previous.index}, type="DataDrift", non_retryable=True)
                if live > c.rows * (1 + inp.drift_tolerance):
                    raise ApplicationError(drift_reason(inp, live), {"chunk": c.index}, type="DataDrift",
                                           non_retryable=True)
                if live == 0:
                    return ChunkResult(c.index, 0, None, round(time.monotonic() - began, 3), found.region,
                                       self.deps.worker_identity)
                unfinished = self._issue_when_queue_allows(target, inp, beat)
                mutation_id, ahead = None, unfinished  # found by its tag at the first poll
            else:
                mutation_id, ahead = mine.id, 0
                live = int(last.get("live", c.rows))
        beat.update(live=live, rows_deleted=0)
        activity.heartbeat(beat)
        mutation_id, deleted = self._wait_for(target, mutation_id, live, beat, ahead)
        return ChunkResult(c.index, deleted, mutation_id, round(time.monotonic() - began, 3), found.region,
                           self.deps.worker_identity)

    def _seen_unfinished(self, inp: ChunkInput, count: int) -> None:
        if self.deps.on_unfinished_mutations is not None:
            self.deps.on_unfinished_mutations(inp.cluster, inp.chunk.table, count)

    def _issue_when_queue_allows(self, target: Target, inp: ChunkInput, beat: dict[str, Any]) -> int:
        """Issue the delete once the table has at most `max_unfinished_mutations` unfinished; returns how
        many were. The count and the issue are one turn of the fleet-wide issue lock, so two workers never
        both issue on the same reading."""
        while True:
            unfinished: int | None = None
            with issue_turn(self.deps.state, inp.cluster, target.qualified) as mine:
                if mine:
                    unfinished = target.unfinished()
                    self._seen_unfinished(inp, unfinished)
                    if unfinished <= inp.max_unfinished_mutations:
                        target.issue(inp.strategy)
                        self._until_listed(target)
                        return unfinished
            if unfinished is not None:
                activity.heartbeat({**beat, "waiting_for_queue": unfinished})
            activity.wait_for_cancelled_sync(QUEUE_POLL_S if unfinished is not None else TURN_POLL_S)
            hand_back_if_stopping(f"chunk {inp.chunk.index} of {inp.cluster} before its delete")
            if activity.is_cancelled():
                raise _cancelled(target, None)

    @staticmethod
    def _until_listed(target: Target) -> None:
        """Hold the turn until the new mutation is in system.mutations (a replicated table lists it a
        moment after the ALTER returns), so the next reader counts it."""
        for _ in range(FIND_TRIES):
            if target.find() is not None:
                return
            time.sleep(0.05)

    def _wait_for(self, target: Target, mutation_id: str | None, live: int,
                  beat: dict[str, Any], ahead: int = 0) -> tuple[str, int]:
        """Poll our mutation until done: (its id, the rows it deleted, i.e. the live rows it was issued for).
        `ahead` mutations of the table were unfinished when ours was issued (a pipelined chunk queues
        behind its predecessor): ours is expected to take that many mutations longer."""
        key = (target.ch.database, target.name)
        expected = _recent.get(key, EXPECTED_FIRST_S) * (1 + ahead)
        began = recounted = time.monotonic()
        delay, misses = min(POLL_EARLY * expected, POLL_MAX_S), 0
        while True:
            if not activity.is_cancelled():
                activity.wait_for_cancelled_sync(delay)
            # A stopping worker leaves the mutation running: the next attempt follows it (found by its tag).
            hand_back_if_stopping(f"{target.qualified} mutation {mutation_id or target.tag} (still running)")
            if activity.is_cancelled():
                raise _cancelled(target, mutation_id or self._find_quietly(target))
            row = target.status(mutation_id)
            if row is None:
                # A just-issued mutation shows up at once; allow for a lag before giving up on it.
                if mutation_id is None and (misses := misses + 1) < FIND_TRIES:
                    delay = 0.05
                    continue
                raise ApplicationError(f"mutation {mutation_id or target.tag} on {target.qualified}"
                                       " disappeared before it was done (or left none to follow)")
            if mutation_id is None:
                mutation_id = beat["mutation_id"] = row.id
            if row.missing:  # the next attempt issues it on those shards
                raise ApplicationError(f"mutation {mutation_id} on {target.qualified} is missing on shard"
                                       f" {', '.join(row.missing)}")
            is_done, fail_reason, parts = row.done, row.fail_reason, row.parts_to_do
            if is_done:
                took = (time.monotonic() - began) / (1 + ahead)
                _recent[key] = took if key not in _recent else 0.5 * (_recent[key] + took)
                return mutation_id, live
            if fail_reason:
                target.kill(mutation_id)  # the next attempt deletes afresh
                raise ApplicationError(f"mutation {mutation_id} on {target.qualified} failed: {fail_reason}",
                                       type="MutationFailed")
            if time.monotonic() - recounted >= RECOUNT_EVERY_S:
                beat["rows_deleted"], recounted = max(live - target.live(), 0), time.monotonic()
            activity.heartbeat({**beat, "parts_to_do": parts})
            elapsed = time.monotonic() - began
            step = max(POLL_STEP * expected, POLL_MIN_S)
            delay = step if elapsed < 2 * expected else min(max(delay, step) * POLL_GROWTH, POLL_MAX_S)

    @staticmethod
    def _find_quietly(target: Target) -> str | None:
        try:
            mine = target.find()
        except Exception:  # noqa: BLE001 - cancelling: the kill is best effort, the cancel goes on
            return None
        return mine.id if mine else None
