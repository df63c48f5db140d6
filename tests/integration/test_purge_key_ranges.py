"""Key-range purges on the demo (chdb, real Temporal dev server): the fewest mutations, each scoped to
its partition and key range, deleting exactly the appeal rows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.planning import PlanningService, PurgeRequest
from bot.registry import CustomerRegistry
from commands.models import DateRange
from tests.integration.test_purge_job import run_purge

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def demo(make_demo: Any) -> Any:
    return make_demo(scale=0.005, seed=7)  # the demo's own size: cap 4,000 rows per mutation


def whole_plan(env: Any, customer: str) -> Any:
    planning = PlanningService(env.config, CustomerRegistry.from_config(env.config), env.pool, env.lookup)
    rng = DateRange(start=env.spec.start, end=env.spec.end)
    return planning.plan_purge(PurgeRequest((customer,), rng), today=date(2026, 3, 1)).plan


def mutations_on(env: Any, cluster: str) -> list[str]:
    rows = env.ch(cluster).query("SELECT command FROM system.mutations WHERE database = {d:String}"
                                 " ORDER BY create_time", {"d": env.ch(cluster).database})
    return [str(r[0]) for r in rows]


async def test_oportun_plan_is_the_lower_bound_and_deletes_exactly_the_appeal_rows(temporal_env: Any,
                                                                                  demo: Any) -> None:
    plan = whole_plan(demo, "oportun")
    chunks = plan.clusters[0].chunks
    cap = plan.max_rows_per_mutation
    assert cap == 4_000
    per_table = {t: [c for c in chunks if c.table == t] for t in ("scorecards", "scores")}
    assert (len(per_table["scorecards"]), len(per_table["scores"])) == (5, 40)  # was 51 + 51 one-day chunks
    assert plan.mutations_lower_bound == len(chunks) == 45
    assert all(0 < c.rows <= cap for c in chunks)
    assert {c.partition for c in chunks} == {"202601", "202602"}
    assert sum(c.rows for c in per_table["scores"]) == plan.total_scores
    assert any(c.lo is not None for c in per_table["scores"])  # days are split where packing needs it

    before_ok = demo.ch_counts("oportun", "us-east-2", appeal=False)
    outcome, progress = await run_purge(demo, temporal_env, plan)
    assert progress.state == "done", outcome
    states = progress.clusters["us-east-2"]
    assert [s.rows_deleted for s in states] == [c.rows for c in chunks]  # each key range held its planned rows
    # pipelined: a table's next chunk started while the one before it on that table still ran
    pairs = zip(states, states[1:], strict=False)
    assert any(a.table == b.table and (b.started or "") < (a.finished or "") for a, b in pairs)
    assert sum(v for v in demo.ch_counts("oportun", "us-east-2", appeal=True).values() for v in v) == 0
    assert demo.ch_counts("oportun", "us-east-2", appeal=False) == before_ok  # nothing else touched
    ours = [m for m in mutations_on(demo, "us-east-2") if "shepherd:" in m]
    assert len(ours) == 45 and all("IN PARTITION ID '2026" in m for m in ours)


async def test_drift_guard_recounts_the_chunk_key_range(temporal_env: Any, demo: Any) -> None:
    plan = whole_plan(demo, "spirit")
    first = plan.clusters[0].chunks[0]
    assert first.table == "scores"
    ch = demo.ch(plan.clusters[0].cluster)
    # Ten more scores inside the first chunk's key range (a copy of its first rows under a new criterion).
    ch.command(f"INSERT INTO `{ch.database}`.scores SELECT customer_id, day, scorecard_id, criterion_id + 1000,"
               f" value FROM `{ch.database}`.scores WHERE customer_id = 'spirit' AND day = {{d:Date}}"
               " AND scorecard_id IN (SELECT scorecard_id FROM `" + ch.database + "`.scorecards WHERE"
               " customer_id = 'spirit' AND scorecard_type IN (1, 2, 3)) ORDER BY scorecard_id LIMIT 100",
               {"d": first.start})
    outcome, progress = await run_purge(demo, temporal_env, plan)
    assert progress.state == "stopped", outcome
    assert "chunk 0 " in (progress.stop_reason or "") and "the data changed since approval" in progress.stop_reason
    assert all(s.state in ("failed", "skipped") for s in progress.clusters[plan.clusters[0].cluster])
