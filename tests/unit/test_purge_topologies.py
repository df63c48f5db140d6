"""Cluster topologies: the configuration, the statements `on_cluster` issues (it cannot run on chdb, so its
SQL text is what is tested), and how the answers of several shards or replicas make one answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from bot.adapters.shards import ShardedClickHouse, ShardFailed
from bot.config import TargetTables, parse_config
from bot.errors import ConfigError, UpstreamError
from bot.purge.target import chunk_target
from bot.temporal.models import ChunkSpec

SCORES = ChunkSpec(index=3, customer="oportun", table="scores", start="2026-01-04", end="2026-01-05", rows=4000,
                   partition="202601", key=["day", "scorecard_id", "criterion_id"],
                   key_types=["Date", "UInt64", "UInt32"], lo=["2026-01-04", "61085", "8"],
                   hi=["2026-01-05", "61441", "5"])
TAG = "shepherd:j:main:3"


class Node:
    """One server: records what it is sent and answers with `answer(sql)`; `down` makes every call fail."""

    database = "db"

    def __init__(self, answer: Callable[[str], list[tuple[Any, ...]]] = lambda sql: [(0, 0, 0)]) -> None:
        self.answer = answer
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.down = False

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self._call(sql, params)
        return self.answer(sql)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._call(sql, params)

    def _call(self, sql: str, params: Mapping[str, Any] | None) -> None:
        if self.down:
            raise UpstreamError("ClickHouse (db): connection refused")
        self.sent.append((sql, dict(params or {})))

    def insert_csv(self, table: str, columns: Sequence[str], csv_data: bytes) -> int:
        raise AssertionError("a purge inserts nothing")

    def close(self) -> None:
        pass


def config(cluster: dict[str, Any]) -> Any:
    return parse_config({"clusters": [{"name": "main", **cluster}],
                         "customers": {"explicit": [{"name": "oportun", "cluster": "main"}]}})


def region(name: str, database: str = "db") -> dict[str, Any]:
    return {"name": name, "host": f"{name}.internal", "database": database}


# ---- configuration -----------------------------------------------------------------------------


def test_the_three_topologies_are_configured_per_cluster() -> None:
    assert config({"regions": [region("us-east-1")]}).cluster("main").topology == "single"
    assert config({"regions": [region("us-east-1")], "on_cluster": "prod"}).cluster("main").topology == "on_cluster"
    sharded = config({"shards": [region("s1"), region("s2"), region("s3")]}).cluster("main")
    assert sharded.topology == "shards" and [s.name for s in sharded.shards] == ["s1", "s2", "s3"]


@pytest.mark.parametrize(("cluster", "said"), [
    ({"regions": [region("a")], "shards": [region("s1")]}, "or shards instead (not both)"),
    ({}, "list at least one region, or shards instead"),
    ({"shards": [region("s1")], "on_cluster": "prod"}, "on_cluster goes with regions"),
    ({"shards": [region("s1"), region("s1")]}, "shard names repeat"),
    ({"shards": [region("s1"), region("s2", "other")]}, "every shard must hold the same database"),
    ({"regions": [region("a")], "on_cluster": "prod; DROP"}, "not a plain identifier"),
])
def test_a_topology_that_does_not_hold_together_is_refused(cluster: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(cluster)
    assert said in info.value.reply()


# ---- on_cluster: the statements ------------------------------------------------------------------


@pytest.mark.parametrize(("strategy", "verb"), [
    ("mutation", "ALTER TABLE `db`.`scores` ON CLUSTER `prod` DELETE IN PARTITION ID '202601' WHERE customer_id ="),
    ("lightweight", "DELETE FROM `db`.`scores` ON CLUSTER `prod` IN PARTITION ID '202601' WHERE customer_id ="),
])
def test_on_cluster_deletes_the_local_table_on_every_node(strategy: str, verb: str) -> None:
    node = Node()
    chunk_target(node, TargetTables(), SCORES, [1, 2, 3], TAG, on_cluster="prod").issue(strategy)
    sql, params = node.sent[-1]
    assert sql.startswith(verb), sql
    assert "scorecard_id IN (SELECT scorecard_id FROM `db`.`scorecards` WHERE" in sql  # each node's own scorecards
    assert params["tag"] == TAG


def test_on_cluster_counts_the_whole_cluster_and_reads_every_replicas_mutations() -> None:
    node = Node()
    target = chunk_target(node, TargetTables(), SCORES, [1, 2, 3], TAG, on_cluster="prod")
    target.guard(None)
    sql, _ = node.sent[-1]
    assert sql.startswith("SELECT (SELECT count() FROM cluster('prod', `db`, `scores`) WHERE customer_id =")
    assert "_partition_id = '202601'" in sql
    assert "FROM clusterAllReplicas('prod', system.mutations) WHERE database = {d:String}" in sql
    target.kill("ignored")
    sql, params = node.sent[-1]
    assert sql == ("KILL MUTATION ON CLUSTER `prod` WHERE database = {d:String} AND table = {t:String}"
                   " AND position(command, {needle:String}) > 0")
    assert params["needle"] == f"'{TAG}'"


def mutations_answer(replicas: int, rows: list[tuple[Any, ...]]) -> Callable[[str], list[tuple[Any, ...]]]:
    def answer(sql: str) -> list[tuple[Any, ...]]:
        if "system.clusters" in sql:
            return [(replicas,)]
        assert sql.startswith("SELECT hostName() AS node, argMax(mutation_id, create_time)"), sql
        assert "FROM clusterAllReplicas('prod', system.mutations)" in sql and sql.endswith("GROUP BY node")
        return rows
    return answer


def test_on_cluster_is_done_only_when_every_replica_says_done() -> None:
    done = [("h1", "0000000003", 1, "", 0), ("h2", "0000000003", 1, "", 0)]
    target = chunk_target(Node(mutations_answer(3, done)), TargetTables(), SCORES, [1], TAG, on_cluster="prod")
    state = target.status(None)
    assert state is not None and not state.done  # a third replica has not reported it yet
    target = chunk_target(Node(mutations_answer(2, done)), TargetTables(), SCORES, [1], TAG, on_cluster="prod")
    assert (state := target.status(None)) is not None and state.done
    assert state.id == "replica h1=0000000003,replica h2=0000000003"


def test_on_cluster_names_the_replica_whose_mutation_fails() -> None:
    rows = [("h1", "0000000003", 1, "", 0), ("h2", "0000000003", 0, "Code: 241. Memory limit exceeded", 2)]
    state = chunk_target(Node(mutations_answer(2, rows)), TargetTables(), SCORES, [1], TAG, on_cluster="prod"
                         ).status(None)
    assert state is not None and not state.done
    assert state.fail_reason == "replica h2: Code: 241. Memory limit exceeded"


# ---- shards: one answer from several -------------------------------------------------------------


def test_a_command_reaches_every_shard_and_a_failing_one_is_named() -> None:
    nodes = [Node(), Node(), Node()]
    nodes[1].down = True
    sharded = ShardedClickHouse("main", [("s1", nodes[0]), ("s2", nodes[1]), ("s3", nodes[2])])
    with pytest.raises(ShardFailed) as info:
        sharded.command("ALTER TABLE x DELETE WHERE 1")
    assert info.value.shards == ["s2"]
    assert info.value.message == "cluster main: shard s2: ClickHouse (db): connection refused"
    assert [len(n.sent) for n in nodes] == [1, 0, 1]  # the others were not skipped because of it


def test_counts_are_summed_over_the_shards_and_the_queue_is_the_longest() -> None:
    nodes = [Node(lambda sql, n=n: [(100 * n, 10 * n, n)]) for n in (1, 2, 3)]
    sharded = ShardedClickHouse("main", [(f"s{i}", n) for i, n in enumerate(nodes, 1)])
    target = chunk_target(sharded, TargetTables(), SCORES, [1, 2, 3], TAG)
    assert target.guard(None) == (600, 60, 3)
    assert target.live() == 100 + 200 + 300


def shard_mutation(*rows: tuple[Any, ...]) -> Node:
    def answer(sql: str) -> list[tuple[Any, ...]]:
        assert sql.startswith("SELECT '' AS node, argMax(mutation_id, create_time)") and "position(command" in sql
        return list(rows)
    return Node(answer)


def test_a_sharded_mutation_is_done_when_every_shard_is_and_a_failure_names_its_shard() -> None:
    ok = ("", "mutation_4.txt", 1, "", 0)
    running = ("", "mutation_9.txt", 0, "", 2)
    failing = ("", "mutation_7.txt", 0, "Code: 341. Exception happened during execution of mutation", 1)

    def state(*nodes: Node) -> Any:
        sharded = ShardedClickHouse("main", [(f"s{i}", n) for i, n in enumerate(nodes, 1)])
        return chunk_target(sharded, TargetTables(), SCORES, [1], TAG).status("ignored: found by tag")

    done = state(shard_mutation(ok), shard_mutation(ok), shard_mutation(ok))
    assert done.done and done.id == "shard s1=mutation_4.txt,shard s2=mutation_4.txt,shard s3=mutation_4.txt"
    assert not state(shard_mutation(ok), shard_mutation(running), shard_mutation(ok)).done
    failed = state(shard_mutation(ok), shard_mutation(ok), shard_mutation(failing))
    assert not failed.done and failed.fail_reason.startswith("shard s3: Code: 341.")
    partial = state(shard_mutation(ok), shard_mutation(), shard_mutation(ok))  # an attempt stopped between shards
    assert not partial.done and partial.missing == ("s2",)
    assert state(shard_mutation(), shard_mutation(), shard_mutation()) is None


def test_a_sharded_cluster_refuses_inserts() -> None:
    sharded = ShardedClickHouse("main", [("s1", Node())])
    with pytest.raises(UpstreamError, match="cluster main is sharded"):
        sharded.insert_csv("scores", ["a"], b"1\n")


# ---- the lookup of a sharded cluster ------------------------------------------------------------


class ShardResolver:
    """Every shard answers `SELECT 1` but those named in `down`, which refuse every attempt."""

    def __init__(self, down: set[str]) -> None:
        self.down, self.attempts, self.nodes = down, dict[str, int](), dict[str, Node]()

    def resolve(self, cluster: Any, region: Any) -> Any:
        self.attempts[region.name] = self.attempts.get(region.name, 0) + 1
        if region.name in self.down:
            raise UpstreamError(f"cannot connect to {region.host}")
        return self.nodes.setdefault(region.name, Node(lambda sql: [(1,)]))


def test_the_lookup_connects_every_shard_or_names_the_ones_down() -> None:
    from bot.adapters.clusters import ClusterLookup
    from bot.errors import ClusterUnavailable

    cfg = config({"shards": [region("s1"), region("s2"), region("s3")]})
    found = ClusterLookup(cfg.clusters, ShardResolver(set()), cfg.lookup, sleep=lambda s: None).connect("main")
    assert isinstance(found.client, ShardedClickHouse) and [n for n, _ in found.client.shards] == ["s1", "s2", "s3"]
    assert found.note() is None
    resolver = ShardResolver({"s2"})
    with pytest.raises(ClusterUnavailable) as info:
        ClusterLookup(cfg.clusters, resolver, cfg.lookup, sleep=lambda s: None).connect("main")
    assert info.value.message == ("cluster main is unavailable: shard s2 (4 attempts): cannot connect to"
                                  " s2.internal")
    assert resolver.attempts == {"s1": 1, "s2": 4, "s3": 1}
