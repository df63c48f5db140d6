"""A purge on a 3-shard cluster (`shards:`), each shard its own chdb HTTP server process reached with
clickhouse-connect, through the real Temporal dev server: it deletes on every shard; a shard that dies
mid-purge stops the job, named; a shard down at the start refuses the plan and deletes nothing."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import ShepherdConfig, parse_config
from bot.errors import ClusterUnavailable, UserInputError
from bot.planning import BackfillRequest, PlanningService, PurgeRequest
from bot.purge.service import PurgeJobService
from bot.registry import CustomerRegistry
from bot.verify.service import VerifyService
from commands.models import DateRange
from tests.integration.chdb_shards import (
    CUSTOMERS,
    DAYS,
    PER_DAY,
    ShardServer,
    load_shards,
    shard_counts,
    tagged_mutations,
)
from tests.integration.test_purge_job import run_purge

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 25), end=date(2026, 2, 13))
CAP = 150


@pytest.fixture(scope="module")
def shards() -> Iterator[list[ShardServer]]:
    root = Path(tempfile.mkdtemp(prefix="shepherd-shards-"))
    servers = [ShardServer(f"s{i}", root / f"s{i}") for i in (1, 2, 3)]
    yield servers
    for s in servers:
        s.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pool(pg_server_dsn: str) -> Iterator[Any]:
    import psycopg

    name = "shards_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    pool = make_pool(pg_server_dsn.replace("/postgres?", f"/{name}?"), max_size=6)
    apply_migrations(pool)
    yield pool
    pool.close()


@dataclass
class ShardedEnv:
    """What run_purge needs (config, pool, lookup) for one fresh database on every shard."""

    config: ShepherdConfig
    pool: Any
    lookup: ClusterLookup
    database: str
    shards: list[ShardServer]

    def plan(self) -> Any:
        planning = PlanningService(self.config, CustomerRegistry.from_config(self.config), self.pool, self.lookup)
        return planning.plan_purge(PurgeRequest(("acme",), RANGE), today=date(2026, 3, 1)).plan

    def counts(self, customer: str = "acme") -> list[dict[str, int]]:
        return [shard_counts(s, self.database, customer) for s in self.shards]


@pytest.fixture()
def env(shards: list[ShardServer], pool: Any) -> ShardedEnv:
    for s in shards:
        if not s.up:
            s.start()  # same port, same data
    database = "shop_" + uuid.uuid4().hex[:8]
    load_shards(shards, database)
    config = parse_config({
        "clusters": [{"name": "sharded", "shards": [s.endpoint(database) for s in shards]}],
        "customers": {"explicit": [{"name": c, "cluster": "sharded"} for c in CUSTOMERS]},
        "purge": {"max_rows_per_mutation": CAP},
        "lookup": {"attempts_per_region": 2, "base_delay_s": 0.05, "max_delay_s": 0.1},
        "backfill": {"max_attempts": 2},
    })
    lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: None), config.lookup)
    return ShardedEnv(config, pool, lookup, database, shards)


async def test_a_purge_deletes_on_every_shard(temporal_env: Any, env: ShardedEnv) -> None:
    before = env.counts()
    assert all(c["appeal_cards"] > 0 for c in before)  # every shard holds rows to delete
    plan = env.plan()
    chunks = plan.clusters[0].chunks
    # planning counted the whole cluster: the sum over the shards
    appeal_cards = DAYS * PER_DAY // 2
    assert (plan.total_scorecards, plan.total_scores) == (appeal_cards, 4 * appeal_cards)
    assert len(chunks) == plan.mutations_lower_bound and all(0 < c.rows <= CAP for c in chunks)
    assert any(c.lo is not None for c in chunks)  # cut inside a day, in the shards' merged key order

    outcome, progress = await run_purge(env, temporal_env, plan, env.config)
    assert progress.state == "done", outcome
    states = progress.clusters["sharded"]
    assert [s.rows_deleted for s in states] == [c.rows for c in chunks]  # each range held its planned rows
    after = env.counts()
    assert [c["appeal_cards"] for c in after] == [0, 0, 0]
    assert [c["scores"] - c["kept_scores"] for c in after] == [0, 0, 0]  # no appeal score left on any shard
    assert [(c["kept_cards"], c["kept_scores"]) for c in after] == [(c["kept_cards"], c["kept_scores"])
                                                                    for c in before]
    assert all(c["appeal_cards"] > 0 for c in env.counts("other"))  # another customer untouched
    for shard in env.shards:  # the same chunks' mutations on every shard
        assert len(tagged_mutations(shard, env.database)) == len(chunks)

    # verification reads the whole cluster too
    verify = VerifyService(env.config, CustomerRegistry.from_config(env.config), env.pool, env.lookup)
    kept, appeal = verify.clickhouse_counts("sharded", ["acme"], RANGE, [1, 2, 3])
    assert appeal == []
    assert sum(d.scorecards for d in kept) == sum(c["kept_cards"] for c in before)

    # a backfill would delete then have to insert into shards Shepherd cannot choose: refused at planning
    planning = PlanningService(env.config, CustomerRegistry.from_config(env.config), env.pool, env.lookup)
    with pytest.raises(UserInputError, match="cluster sharded is sharded"):
        planning.plan_backfill(BackfillRequest(("acme",), RANGE), today=date(2026, 3, 1))


async def test_a_shard_dying_mid_purge_stops_the_job_and_is_named(temporal_env: Any, env: ShardedEnv) -> None:
    plan = env.plan()
    chunks = plan.clusters[0].chunks

    async def kill_s3_after_the_first_chunk(jobs: PurgeJobService, job: str) -> None:
        for _ in range(600):
            progress = await jobs.purge_progress(job)
            if any(s.state == "done" for s in progress.clusters["sharded"]):
                env.shards[2].kill()
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no chunk finished")

    outcome, progress = await run_purge(env, temporal_env, plan, env.config, control=kill_s3_after_the_first_chunk)
    assert progress.state == "stopped", outcome
    assert "shard s3" in (progress.stop_reason or ""), progress.stop_reason
    states = progress.clusters["sharded"]
    done = [s for s in states if s.state == "done"]
    failed = [s for s in states if s.state == "failed"]
    assert 1 <= len(done) < len(chunks) and failed
    assert all("shard s3" in (s.last_failure or "") for s in failed)
    assert all(s.state in ("done", "failed", "skipped") for s in states)  # nothing after the failure ran
    # what is counted done was deleted on the shards still up; the rest of the plan was not
    assert sum(s.rows_deleted for s in done) < plan.total_scorecards + plan.total_scores
    s1, s2 = [shard_counts(s, env.database, "acme") for s in env.shards[:2]]
    assert s1["appeal_cards"] + s2["appeal_cards"] > 0


async def test_a_shard_down_at_the_start_refuses_and_deletes_nothing(temporal_env: Any, env: ShardedEnv) -> None:
    plan = env.plan()  # approved while every shard answered
    before = env.counts()
    env.shards[1].kill()
    with pytest.raises(ClusterUnavailable, match=r"cluster sharded is unavailable: shard s2 \(2 attempts\)"):
        env.plan()  # a new plan is refused, naming the shard

    outcome, progress = await run_purge(env, temporal_env, plan, env.config)
    assert progress.state == "stopped", outcome
    # chunks 0 and 1 start together (pipelined): whichever fails first is the stop reason
    assert re.match(r"chunk [01] of cluster sharded failed: cluster sharded is unavailable: shard s2 ",
                    progress.stop_reason or ""), progress.stop_reason
    assert "shard s2" in (progress.stop_reason or "")
    assert [s.state for s in progress.clusters["sharded"]][:1] == ["failed"]
    assert all(s.state in ("failed", "skipped") for s in progress.clusters["sharded"])
    assert sum(s.rows_deleted for s in progress.clusters["sharded"]) == 0
    up = [0, 2]
    assert [shard_counts(env.shards[i], env.database, "acme") for i in up] == [before[i] for i in up]
    assert all(tagged_mutations(env.shards[i], env.database) == [] for i in up)


async def test_cancel_kills_the_chunk_mutation_on_every_shard(temporal_env: Any, env: ShardedEnv) -> None:
    plan = env.plan()
    tables = [f"`{env.database}`.{t}" for t in ("scores", "scorecards")]
    stuck = env.shards[1].client(env.database)
    for table in tables:  # s2 cannot run the first chunk's mutation: it stays in flight there
        stuck.command(f"SYSTEM STOP MERGES {table}")
    seen: dict[str, Any] = {}

    async def cancel_while_s2_holds_it(jobs: PurgeJobService, job: str) -> None:
        for _ in range(400):
            rows = stuck.query("SELECT is_done FROM system.mutations WHERE database = {d:String}"
                               " AND position(command, {tag:String}) > 0",
                               {"d": env.database, "tag": f"'shepherd:{job}:sharded:0'"})
            if rows:
                break
            await asyncio.sleep(0.05)
        seen["in flight on s2"] = rows
        await jobs.purge_cancel(job)

    try:
        outcome, progress = await run_purge(env, temporal_env, plan, env.config, control=cancel_while_s2_holds_it,
                                            heartbeat_timeout_s=2)
        left = stuck.query("SELECT count() FROM system.mutations WHERE database = {d:String} AND NOT is_done",
                           {"d": env.database})[0][0]
    finally:
        for table in tables:
            stuck.command(f"SYSTEM START MERGES {table}")
        stuck.close()
    assert seen["in flight on s2"] == [(0,)]
    assert progress.state == "cancelled", outcome
    assert progress.clusters["sharded"][0].state == "cancelled"
    assert left == 0  # killed on s2, where it was still running, not left to run later
