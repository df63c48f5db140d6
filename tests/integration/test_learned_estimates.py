"""Estimates that learn, on embedded Postgres and the demo: a customer's finished windows, kept with
its job's result, replace the configured range in its next plan; the plan says which it used."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from bot.backfill.rate_history import past_windows
from bot.jobs.ids import new_job_id
from bot.planning import BackfillRequest, PlanningService
from bot.registry import CustomerRegistry
from bot.temporal.models import BackfillProgress, WindowState
from bot.writeups.service import WriteupService
from commands import render
from commands.models import DateRange

RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))
T0 = datetime(2026, 2, 21, 22, 0, tzinfo=UTC)


def finished_job(env: Any, customer: str, runs: list[tuple[int, float]], state: str = "done") -> None:
    job = new_job_id("backfill")
    with env.pool.connection() as conn:
        conn.execute("INSERT INTO shepherd.jobs (id, kind, state, requester) VALUES (%s, 'backfill', 'done', 'U_A')",
                     (job,))
    windows = [WindowState(key=f"{customer}:{i}", customer=customer, cluster="chat-prod", start="2026-01-03",
                           end="2026-01-07", state=state, done=n, total=n, started=T0.isoformat(),
                           finished=(T0 + timedelta(hours=h)).isoformat()) for i, (n, h) in enumerate(runs)]
    WriteupService(env.pool, env.config).store_result(job, BackfillProgress(job_id=job, state="done", parallel=4,
                                                                              paused=False, start_at=None,
                                                                              windows=windows))


def test_past_windows_replace_the_configured_range(make_demo: Any) -> None:
    env = make_demo(scale=0.001, seed=12)
    registry = CustomerRegistry.from_config(env.config)
    planning = PlanningService(env.config, registry, env.pool, env.lookup)
    planning.history = partial(past_windows, env.pool)
    request = BackfillRequest(("hilton", "spirit"), RANGE, 5, 4)
    before = planning.plan_backfill(request, RANGE.end)
    assert {c.rates for c in before.customers} == {"configured: 35-50/h"}  # the demo's throughput, scaled

    finished_job(env, "hilton", [(60, 2.0), (90, 2.0)])
    finished_job(env, "hilton", [(80, 2.0)])
    finished_job(env, "spirit", [(500, 1.0)] * 5, state="failed")  # failed windows teach nothing
    after = planning.plan_backfill(request, RANGE.end)
    by = {c.customer: c for c in after.customers}
    assert by["hilton"].rates == "learned from 3 past windows: 27-50/h"
    assert by["spirit"].rates == "configured: 35-50/h"
    assert after.plan_hash != before.plan_hash
    first = by["hilton"].windows[0]
    assert first.est_hours[1] == round(first.conversations / (30 / 1.1), 2)  # the slowest past window, widened
    assert "rates: hilton learned from 3 past windows" in render.backfill_plan_text(after)
