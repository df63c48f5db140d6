"""A job's windows and their states in columns: the same windows back, a fraction of the size."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from temporalio.converter import DataConverter

from bot.temporal.models import BackfillJobInput, BackfillProgressTable, WindowSpec
from bot.temporal.window_table import specs_of, states_of, table_of, window_states

WARN_BYTES = 512 * 1024  # Temporal's payload warning


def encoded(value: object) -> int:
    return DataConverter.default.payload_converter.to_payloads([value])[0].ByteSize()


def many_specs(n: int, customers: int = 100) -> list[WindowSpec]:
    rnd = random.Random(3)
    specs = []
    for i in range(n):
        c, d = i % customers, i // customers
        start = date(2025, 1, 1) + timedelta(days=3 * d)
        end = start + timedelta(days=rnd.choice((0, 1, 2)))
        specs.append(WindowSpec(key=f"customer-{c:03d}:{start}:{end}", customer=f"customer-{c:03d}",
                                cluster=("chat-prod", "voice-prod", "us-east-2")[c % 3], start=start.isoformat(),
                                end=end.isoformat(), conversations=rnd.randint(0, 400_000),
                                est_hours_hi=rnd.random() * 9))
    return specs


def test_the_table_gives_the_same_windows_back_with_the_estimate_rounded_up() -> None:
    specs = many_specs(500)
    back = specs_of(table_of(specs))
    assert [(s.key, s.customer, s.cluster, s.start, s.end, s.conversations) for s in back] == [
        (s.key, s.customer, s.cluster, s.start, s.end, s.conversations) for s in specs]
    assert all(s.est_hours_hi <= b.est_hours_hi < s.est_hours_hi + 0.01 + 1e-9
               for s, b in zip(specs, back, strict=True))
    assert specs_of(table_of([])) == []


def test_every_state_survives_the_columns() -> None:
    specs = many_specs(6)
    epoch = datetime(2026, 2, 21, 22, 0, tzinfo=UTC)
    at = [(epoch + timedelta(seconds=s)).isoformat() for s in (5, 70, 3600, 9000)]
    windows = window_states(specs, None, lambda s: f"backfill:b-1:{s.key}")
    assert [w.state for w in windows] == ["pending"] * 6 and windows[0].total == specs[0].conversations
    done, failed, cancelled, running = windows[:4]
    done.state, done.attempt, done.done, done.total, done.region = "done", 2, 41, 41, "us-east-1"
    done.started, done.finished, done.resumed_from = at[0], at[2], "2025-01-02"
    failed.state, failed.attempt, failed.started, failed.finished = "failed", 1, at[1], at[3]
    failed.last_failure = "source replica lagging"
    cancelled.state, cancelled.attempt, cancelled.started, cancelled.finished = "cancelled", 1, at[1], at[1]
    running.state, running.attempt, running.started = "running", 1, at[3]
    for w in windows[:4]:
        w.workflow_id = f"backfill:b-1:{w.key}"
    back = window_states(specs, states_of(specs, windows, epoch.isoformat()), lambda s: f"backfill:b-1:{s.key}")
    assert back == windows


def test_ten_thousand_windows_stay_far_under_the_payload_warning() -> None:
    specs = many_specs(10_000)
    old = BackfillJobInput(job_id="b-1", plan_hash="0" * 16, windows=specs, parallel=8)
    new = BackfillJobInput(job_id="b-1", plan_hash="0" * 16, windows=[], table=table_of(specs), parallel=8)
    assert encoded(old) > 3 * WARN_BYTES  # why: a dataclass a window
    assert encoded(new) < WARN_BYTES / 2
    epoch = datetime(2026, 2, 21, tzinfo=UTC)
    windows = window_states(specs, None, lambda s: s.key)
    for i, w in enumerate(windows):  # every window ran, over weeks
        w.state, w.attempt, w.done = "done", 1, w.total
        w.started = (epoch + timedelta(seconds=180 * i)).isoformat()
        w.finished = (epoch + timedelta(seconds=180 * i + 7200)).isoformat()
        w.region, w.workflow_id = "us-east-1", f"backfill:b-1:{w.key}"
    assert encoded(windows) > 7 * WARN_BYTES  # what `progress` answers
    table = BackfillProgressTable(job_id="b-1", state="done", parallel=8, paused=False, start_at=None,
                                  windows=new.table, states=states_of(specs, windows, epoch.isoformat()))  # type: ignore[arg-type]
    assert encoded(table) < WARN_BYTES * 0.8  # what `progress_table` answers, and the continue-as-new input
    assert window_states(specs, table.states, lambda s: f"backfill:b-1:{s.key}") == windows
