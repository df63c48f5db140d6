"""Servers for integration tests: a Temporal dev server, and demo datasets in fresh databases.

Embedded Postgres and the in-process chdb session come from tests/conftest.py. Worker processes
started by a test (the crash tests) open their own chdb data path: chdb allows one per process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env() -> AsyncIterator[Any]:
    from temporalio.testing import WorkflowEnvironment

    from bot.embedded.stack import temporal_binary
    from bot.temporal.search_attributes import KEYS

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        ui=False,
        dev_server_extra_args=["--log-level", "error"],
        search_attributes=KEYS,
    )
    try:
        yield env
    finally:
        await env.shutdown()


class DemoEnv:
    """A demo dataset in its own Postgres database and its own ClickHouse databases (prefixed)."""

    def __init__(self, pg_dsn: str, prefix: str, spec: Any, chdb_session: Any) -> None:
        import os

        from bot.adapters.clusters import ClusterLookup, DefaultResolver
        from bot.adapters.postgres import apply_migrations, make_pool
        from bot.config import parse_config
        from bot.embedded.demo import demo_config
        from bot.temporal.deps import ActivityDeps

        self.pg_dsn, self.prefix, self.spec, self.chdb = pg_dsn, prefix, spec, chdb_session
        self.config = parse_config(demo_config(spec, db_prefix=prefix), "demo config")
        self.pool = make_pool(pg_dsn, max_size=12)
        apply_migrations(self.pool)
        self.lookup = ClusterLookup(self.config.clusters, DefaultResolver(os.environ, lambda: chdb_session),
                                    self.config.lookup)
        self.deps = ActivityDeps(self.config, self.pool, self.pool, self.lookup)

    def ch(self, cluster: str) -> Any:
        return self.lookup.connect(cluster).client

    def ch_counts(self, customer: str, cluster: str, appeal: bool) -> dict[Any, tuple[int, int]]:
        """{day: (scorecards, scores)} of the customer's appeal or non-appeal rows in ClickHouse."""
        ch = self.ch(cluster)
        cond = "scorecard_type <= 3" if appeal else "scorecard_type > 3"
        cards = dict(ch.query(f"SELECT day, count() FROM `{ch.database}`.scorecards WHERE customer_id = {{c:String}}"
                              f" AND {cond} GROUP BY day", {"c": customer}))
        scores = dict(ch.query(
            f"SELECT day, count() FROM `{ch.database}`.scores WHERE customer_id = {{c:String}} AND scorecard_id IN"
            f" (SELECT scorecard_id FROM `{ch.database}`.scorecards WHERE customer_id = {{c:String}} AND {cond})"
            " GROUP BY day", {"c": customer}))
        return {d: (cards[d], scores.get(d, 0)) for d in cards}

    def pg_counts(self, customer: str) -> dict[Any, tuple[int, int]]:
        """{day: (scorecards, scores)} of the customer's non-appeal rows in Postgres."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT s.created_at::date, count(DISTINCT s.id), count(x.id) FROM scorecards s"
                " LEFT JOIN scores x ON x.scorecard_id = s.id WHERE s.customer_id = %s AND s.scorecard_type > 3"
                " GROUP BY 1", (customer,)).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture(scope="session")
def make_demo(pg_server_dsn: str, chdb_session: Any) -> Iterator[Callable[..., DemoEnv]]:
    """Load a demo dataset into fresh databases: make_demo(scale=0.002, seed=7) -> DemoEnv."""
    import uuid

    import psycopg

    from bot.adapters.clickhouse import ChdbClickHouse
    from bot.embedded.demo import DemoSpec, load_demo

    made: list[DemoEnv] = []

    def make(scale: float = 0.002, seed: int = 7) -> DemoEnv:
        prefix = "d" + uuid.uuid4().hex[:8] + "_"
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{prefix[:-1]}"')
        dsn = pg_server_dsn.replace("/postgres?", f"/{prefix[:-1]}?")
        spec = DemoSpec(scale=scale, seed=seed)
        load_demo(dsn, lambda db: ChdbClickHouse(chdb_session, db), spec, db_prefix=prefix)
        env = DemoEnv(dsn, prefix, spec, chdb_session)
        made.append(env)
        return env

    yield make
    for env in made:
        env.pool.close()
