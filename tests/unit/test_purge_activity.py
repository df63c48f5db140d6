"""The purge chunk activity against a scripted ClickHouse: drift guard, one delete per chunk, adoption
of an earlier attempt's mutation, the mutation queue, cancel kills only on request, bound values."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from temporalio.activity import ActivityCancellationDetails
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from bot.adapters.clusters import ClusterLookup
from bot.config import Cluster, Region, parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.purge.activities import PurgeActivities, chunk_tag
from bot.temporal.deps import ActivityDeps
from bot.temporal.models import ChunkInput, ChunkSpec

CONFIG = parse_config(demo_config(DemoSpec(scale=0.01)))


class FakeClickHouse:
    """Answers the activity's queries from a small model of one table and its system.mutations."""

    database = "cluster_us_east_2"

    def __init__(self, live: int, done_after_polls: int = 2, fail: str = "", unfinished: list[int] | None = None,
                 on_poll: Callable[[int], None] | None = None) -> None:
        self.live_rows = live
        self.done_after_polls = done_after_polls
        self.fail = fail
        self.unfinished = unfinished or []
        self.on_poll = on_poll
        self.previous_live = 0
        self.polls = 0
        self.mutations: list[dict[str, Any]] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        p = dict(params or {})
        self.queries.append((sql, p))
        if sql == "SELECT 1":
            return [(1,)]
        if sql.startswith("SELECT (SELECT count()"):  # the guard: live rows, the previous chunk's, the queue
            return [(self.live_rows, self.previous_live if "p_c" in p else 0, self._unfinished())]
        if "system.mutations" in sql and "NOT is_done" in sql:
            return [(self._unfinished(),)]
        if "parts_to_do" in sql:  # polling our mutation, by id or (before its id is known) by tag
            self.polls += 1
            if self.on_poll:
                self.on_poll(self.polls)
            found = [m for m in self.mutations
                     if (m["id"] == p["m"] if p["m"] else p["needle"] in m["command"])][-1:]
            if not found:
                return []
            m = found[0]
            if self.polls >= self.done_after_polls and not self.fail:
                m["done"], self.live_rows = True, 0
            return [(m["id"], m["done"], self.fail, 0 if m["done"] else 3)]
        if "position(command" in sql:
            mine = [m for m in self.mutations if p["needle"] in m["command"]]
            return [(m["id"], m["done"], m["fail"]) for m in mine[-1:]]
        if sql.startswith("SELECT count() FROM"):
            return [(self.live_rows,)]
        raise AssertionError(f"unexpected query {sql}")

    def _unfinished(self) -> int:
        return self.unfinished.pop(0) if self.unfinished else 0

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        p = dict(params or {})
        self.commands.append((sql, p))
        if sql.startswith("KILL MUTATION"):
            self.mutations = [m for m in self.mutations if m["id"] != p["m"]]
        elif "DELETE" in sql:
            self.add_mutation(p["tag"])

    def add_mutation(self, tag: str, done: bool = False) -> str:
        mutation_id = f"mutation_{len(self.mutations) + 2}.txt"
        self.mutations.append({"id": mutation_id, "command": f"DELETE WHERE x AND ('{tag}' != '')", "done": done,
                               "fail": ""})
        return mutation_id

    def close(self) -> None:
        pass

    def deletes(self) -> list[str]:
        return [sql for sql, _ in self.commands if "DELETE" in sql]


class FakeResolver:
    def __init__(self, ch: FakeClickHouse) -> None:
        self.ch = ch

    def resolve(self, cluster: Cluster, region: Region) -> Any:
        return self.ch


def chunk_input(rows: int = 100, table: str = "scores", strategy: str = "mutation", index: int = 3) -> ChunkInput:
    spec = ChunkSpec(index=index, customer="oportun", table=table, start="2026-01-05", end="2026-01-05", rows=rows)
    return ChunkInput(job_id="p-abc123", cluster="us-east-2", chunk=spec, types=[1, 2, 3], strategy=strategy,
                      max_unfinished_mutations=2, drift_tolerance=0.01)


def run(ch: FakeClickHouse, inp: ChunkInput, env: ActivityEnvironment | None = None,
        unfinished_seen: list[tuple[str, str, int]] | None = None) -> Any:
    env = env or ActivityEnvironment()
    lookup = ClusterLookup(CONFIG.clusters, FakeResolver(ch), CONFIG.lookup, sleep=lambda s: None)
    deps = ActivityDeps(CONFIG, None, None, lookup)
    if unfinished_seen is not None:
        deps.on_unfinished_mutations = lambda *seen: unfinished_seen.append(seen)
    acts = PurgeActivities(deps)
    return env.run(acts.purge_chunk, inp)


def beats(env: ActivityEnvironment) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    env.on_heartbeat = lambda *details: seen.append(dict(details[0]))
    return seen


def test_a_chunk_issues_one_tagged_async_mutation_and_waits_for_it() -> None:
    ch, env = FakeClickHouse(live=100, done_after_polls=3), ActivityEnvironment()
    seen = beats(env)
    result = run(ch, chunk_input(), env)
    assert result.rows_deleted == 100 and result.mutation_id == "mutation_2.txt" and result.region == "local"
    (delete,) = ch.deletes()
    assert delete.startswith("ALTER TABLE `cluster_us_east_2`.`scores` DELETE WHERE")
    assert "mutations_sync = 0" in delete and "{tag:String} != ''" in delete
    assert "scorecard_id IN (SELECT scorecard_id FROM `cluster_us_east_2`.`scorecards`" in delete
    # The first beat (right after the delete) carries the chunk's tag, which finds the mutation again;
    # the beats while it runs carry its id too.
    assert seen[0]["chunk"] == 3 and seen[0]["live"] == 100 and seen[0]["tag"] == chunk_tag(chunk_input())
    assert {"rows_deleted", "region"} <= set(seen[0])
    assert any(b.get("mutation_id") == "mutation_2.txt" for b in seen[1:])


def test_values_are_bound_never_in_the_sql_text() -> None:
    ch = FakeClickHouse(live=10)
    run(ch, chunk_input(10, table="scorecards"))
    for sql, _ in ch.commands + ch.queries:
        assert "oportun" not in sql and "2026-01-05" not in sql and "p-abc123" not in sql
    sql, params = ch.commands[0]
    assert params == {"c": "oportun", "lo": "2026-01-05", "hi": "2026-01-05", "types": [1, 2, 3],
                      "tag": "shepherd:p-abc123:us-east-2:3"}


def test_drift_guard_refuses_and_deletes_nothing() -> None:
    ch = FakeClickHouse(live=102)  # plan said 100, tolerance 1%
    with pytest.raises(ApplicationError) as err:
        run(ch, chunk_input(100))
    assert err.value.type == "DataDrift" and err.value.non_retryable
    assert err.value.message.startswith(
        "the data changed since approval: chunk 3 of cluster us-east-2 (oportun scores 2026-01-05..2026-01-05)"
        " has 102 live rows, plan said 100 (tolerance 1%)")
    assert ch.commands == []
    assert run(FakeClickHouse(live=101), chunk_input(100)).rows_deleted == 101  # within tolerance


def test_nothing_left_means_nothing_issued() -> None:
    ch = FakeClickHouse(live=0)
    result = run(ch, chunk_input(100))
    assert result.rows_deleted == 0 and result.mutation_id is None and ch.commands == []


def test_a_retried_attempt_follows_the_mutation_an_earlier_attempt_issued() -> None:
    # The earlier attempt died between its ALTER and its first heartbeat: no details name the mutation,
    # but its tag is in system.mutations; the new attempt follows it and issues nothing.
    ch = FakeClickHouse(live=100)
    earlier = ch.add_mutation(chunk_tag(chunk_input()))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2)
    result = run(ch, chunk_input(), env)
    assert result.mutation_id == earlier and ch.deletes() == []


def test_a_retried_attempt_after_its_mutation_finished_reports_the_heartbeat_count() -> None:
    ch = FakeClickHouse(live=0)
    earlier = ch.add_mutation(chunk_tag(chunk_input()), done=True)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[{"chunk": 3, "mutation_id": earlier,
                                                                              "live": 97}])
    result = run(ch, chunk_input(), env)
    assert result.rows_deleted == 97 and result.mutation_id == earlier and ch.deletes() == []


def test_another_chunks_mutation_is_not_mistaken_for_ours() -> None:
    ch = FakeClickHouse(live=100)
    ch.add_mutation(chunk_tag(chunk_input(index=13)))  # the tag is matched whole, quotes included
    run(ch, chunk_input(index=1))
    assert len(ch.deletes()) == 1


def test_waits_while_the_table_has_too_many_unfinished_mutations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.purge.activities.QUEUE_POLL_S", 0.01)
    ch, env = FakeClickHouse(live=100, unfinished=[3, 3, 2]), ActivityEnvironment()
    seen, unfinished = beats(env), list[tuple[str, str, int]]()
    run(ch, chunk_input(), env, unfinished)
    waits = [b["waiting_for_queue"] for b in seen if "waiting_for_queue" in b]
    assert waits == [3] and len(ch.deletes()) == 1  # the guard read the first 3, the wait the second
    # the worker's shepherd_mutations_unfinished gauge follows every reading
    assert unfinished == [("us-east-2", "scores", 3), ("us-east-2", "scores", 3), ("us-east-2", "scores", 2)]


def test_cancel_requested_kills_our_own_mutation() -> None:
    env = ActivityEnvironment()
    ch = FakeClickHouse(live=100, done_after_polls=99, on_poll=lambda n: env.cancel() if n == 2 else None)
    with pytest.raises(CancelledError):
        run(ch, chunk_input(), env)
    kills = [p for sql, p in ch.commands if sql.startswith("KILL MUTATION")]
    assert kills == [{"d": "cluster_us_east_2", "t": "scores", "m": "mutation_2.txt"}] and ch.mutations == []


def test_worker_shutdown_leaves_the_mutation_for_the_next_attempt() -> None:
    env = ActivityEnvironment()
    shutdown = ActivityCancellationDetails(worker_shutdown=True)
    ch = FakeClickHouse(live=100, done_after_polls=99, on_poll=lambda n: env.cancel(shutdown) if n == 2 else None)
    with pytest.raises(CancelledError):
        run(ch, chunk_input(), env)
    assert not any(sql.startswith("KILL") for sql, _ in ch.commands) and len(ch.mutations) == 1


def test_a_failing_mutation_is_killed_and_reported() -> None:
    ch = FakeClickHouse(live=100, fail="Memory limit exceeded")
    with pytest.raises(ApplicationError, match="failed: Memory limit exceeded") as err:
        run(ch, chunk_input())
    assert err.value.type == "MutationFailed" and not err.value.non_retryable and ch.mutations == []


def test_lightweight_strategy_is_an_async_lightweight_delete() -> None:
    ch = FakeClickHouse(live=40)
    result = run(ch, chunk_input(40, table="scorecards", strategy="lightweight"))
    (delete,) = ch.deletes()
    assert delete.startswith("DELETE FROM `cluster_us_east_2`.`scorecards` WHERE customer_id = {c:String}")
    assert delete.endswith("SETTINGS lightweight_deletes_sync = 0") and result.rows_deleted == 40
