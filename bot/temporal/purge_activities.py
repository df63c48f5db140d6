"""The purge chunk activity: recount (drift guard), wait for the mutation queue, delete, wait.

Heartbeats carry the chunk index and the mutation's id, so a retried attempt keeps waiting for
the mutation it already issued instead of issuing another; cancellation kills its own mutation.
"""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table
from bot.temporal.deps import ActivityDeps
from bot.temporal.models import ChunkInput, ChunkResult

POLL_FIRST_S, POLL_MAX_S = 0.02, 1.0  # small mutations finish in milliseconds; big ones take minutes


class PurgeActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    def all(self) -> list[Any]:
        return [self.purge_chunk]

    def _filter(self, ch: ClickHouse, table: str) -> str:
        cards = ch_table(ch.database, self.deps.config.target.scorecards)
        appeal = (
            "customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date}"
            " AND scorecard_type IN {types:Array(UInt8)}"
        )
        if table == "scorecards":
            return appeal
        # Scorecard ids are unique, so the scores' filter needs only the id (and the day range for pruning).
        return (
            "customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date}"
            f" AND scorecard_id IN (SELECT scorecard_id FROM {cards} WHERE {appeal})"
        )

    def _table(self, ch: ClickHouse, table: str) -> str:
        target = self.deps.config.target
        return ch_table(ch.database, target.scorecards if table == "scorecards" else target.scores)

    @activity.defn(name="purge_chunk")
    def purge_chunk(self, inp: ChunkInput) -> ChunkResult:
        began = time.monotonic()
        details = activity.info().heartbeat_details
        last: dict[str, Any] = details[0] if details and isinstance(details[0], dict) else {}
        found = self.deps.lookup.connect(inp.cluster)
        ch, c = found.client, inp.chunk
        params = {"c": c.customer, "lo": c.start, "hi": c.end, "types": list(inp.types)}
        table, where = self._table(ch, c.table), self._filter(ch, c.table)
        mutation_id = last.get("mutation_id")
        live = int(last.get("live", 0))
        if not mutation_id:
            live = int(ch.query(f"SELECT count() FROM {table} WHERE {where}", params)[0][0])
            if live > c.rows * (1 + inp.drift_tolerance):
                raise ApplicationError(
                    f"the data changed since approval: chunk {c.index} of cluster {inp.cluster} ({c.customer} "
                    f"{c.table} {c.start}..{c.end}) has {live:,} live rows, the plan said {c.rows:,} "
                    f"(tolerance {inp.drift_tolerance:.0%}); nothing more was deleted",
                    type="DataDrift", non_retryable=True,
                )
            if live == 0:
                return ChunkResult(c.index, 0, None, round(time.monotonic() - began, 3), found.region)
            self._wait_for_queue(ch, c.table, inp)
            if inp.strategy == "lightweight":
                ch.command(f"DELETE FROM {table} WHERE {where}", params)
                return ChunkResult(c.index, live, None, round(time.monotonic() - began, 3), found.region)
            try:
                mutation_id = self._issue(ch, table, c.table, where, params)
            except CancelledError:
                self._kill_issued(ch, c.table, c.customer)  # cancelled while issuing: it may exist unseen
                raise
            activity.heartbeat({"chunk": c.index, "mutation_id": mutation_id, "live": live})
        self._wait_for(ch, c.table, mutation_id, c.index, live)
        return ChunkResult(c.index, live, mutation_id, round(time.monotonic() - began, 3), found.region)

    def _name(self, table: str) -> str:
        target = self.deps.config.target
        return target.scorecards if table == "scorecards" else target.scores

    def _mutations(self, ch: ClickHouse, table: str) -> set[str]:
        rows = ch.query("SELECT mutation_id FROM system.mutations WHERE database = {d:String} AND table = {t:String}",
                        {"d": ch.database, "t": self._name(table)})
        return {str(r[0]) for r in rows}

    def _issue(self, ch: ClickHouse, qualified: str, table: str, where: str, params: dict[str, Any]) -> str:
        before = self._mutations(ch, table)
        ch.command(f"ALTER TABLE {qualified} DELETE WHERE {where}", params)
        new = sorted(self._mutations(ch, table) - before)
        if not new:
            raise ApplicationError(f"the delete on {qualified} left no mutation to follow")
        return new[-1]

    def _kill_issued(self, ch: ClickHouse, table: str, customer: str) -> None:
        ch.command("KILL MUTATION WHERE database = {d:String} AND table = {t:String} AND NOT is_done"
                   " AND position(command, {c:String}) > 0", {"d": ch.database, "t": self._name(table), "c": customer})

    def _wait_for_queue(self, ch: ClickHouse, table: str, inp: ChunkInput) -> None:
        """No new mutation while the table has `max_unfinished_mutations` or more unfinished."""
        while True:
            unfinished = int(ch.query(
                "SELECT count() FROM system.mutations WHERE database = {d:String} AND table = {t:String}"
                " AND NOT is_done", {"d": ch.database, "t": self._name(table)})[0][0])
            if unfinished < inp.max_unfinished_mutations:
                return
            activity.heartbeat({"chunk": inp.chunk.index, "waiting_for_queue": unfinished})
            time.sleep(POLL_MAX_S)

    def _wait_for(self, ch: ClickHouse, table: str, mutation_id: str, index: int, live: int) -> None:
        params = {"d": ch.database, "t": self._name(table), "m": mutation_id}
        delay = POLL_FIRST_S
        try:
            while True:
                rows = ch.query(
                    "SELECT is_done, latest_fail_reason, parts_to_do FROM system.mutations"
                    " WHERE database = {d:String} AND table = {t:String} AND mutation_id = {m:String}", params)
                if not rows:
                    raise ApplicationError(f"mutation {mutation_id} on {table} disappeared (killed?)")
                is_done, fail_reason, parts = rows[0]
                if fail_reason:
                    raise ApplicationError(f"mutation {mutation_id} on {table} failed: {fail_reason}")
                if is_done:
                    return
                activity.heartbeat({"chunk": index, "mutation_id": mutation_id, "live": live, "parts_to_do": parts})
                if activity.is_cancelled():
                    raise CancelledError("cancelled")
                time.sleep(delay)
                delay = min(delay * 2, POLL_MAX_S)
        except CancelledError:
            ch.command("KILL MUTATION WHERE database = {d:String} AND table = {t:String} AND mutation_id = {m:String}",
                       params)
            raise
