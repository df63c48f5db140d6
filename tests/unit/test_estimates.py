"""Estimates that learn (commands/estimates.py): a customer's past windows replace the configured range."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from commands import render
from commands.estimates import PastWindow, learned_rates, throughput_for
from commands.models import CustomerRef, DateRange, Throughput, WindowPolicy
from commands.schedule import plan_backfill_series

CONFIGURED = Throughput(low=35_000, high=50_000)
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**7), st.floats(1.0, 10**6)), min_size=3, max_size=30))
def test_the_learned_range_holds_every_past_window(runs: list[tuple[int, float]]) -> None:
    learned = learned_rates([PastWindow("hilton", n, s) for n, s in runs])["hilton"]
    assert learned.windows == len(runs)
    for n, s in runs:
        assert learned.throughput.low <= n * 3600 / s <= learned.throughput.high


def test_too_little_history_keeps_the_configured_range_and_the_plan_says_which() -> None:
    history = [PastWindow("hilton", 40_000, 3600), PastWindow("hilton", 30_000, 3600),
               PastWindow("hilton", 36_000, 3600), PastWindow("spirit", 10_000, 600),
               PastWindow("spirit", 0, 600)]  # an empty window teaches nothing
    learned = learned_rates(history)
    assert set(learned) == {"hilton"}
    assert learned["hilton"].note() == "learned from 3 past windows: 27,273-44,000/h"
    throughput, rates = throughput_for(["hilton", "spirit"], learned, CONFIGURED)
    assert throughput["spirit"] == CONFIGURED and rates["spirit"] == "configured: 35,000-50,000/h"
    series = {"hilton": [44_000] * RANGE.days, "spirit": [44_000] * RANGE.days}
    refs = [CustomerRef(name="hilton", cluster="chat-prod"), CustomerRef(name="spirit", cluster="chat-prod")]
    plan = plan_backfill_series(series, refs, RANGE, WindowPolicy(), throughput, 4, 5, rates)
    by = {c.customer: c for c in plan.customers}
    assert by["hilton"].rates.startswith("learned from 3") and by["spirit"].rates.startswith("configured")
    # hilton's slowest past window ran 27,273/h: its 5-day windows (220,000) may take 8.07 h, not 6.29 h
    assert by["hilton"].windows[0].est_hours == (5.0, 8.07) and by["spirit"].windows[0].est_hours == (4.4, 6.29)
    said = render.backfill_plan_text(plan)
    assert ("rates: hilton learned from 3 past windows: 27,273-44,000/h; the others configured: 35,000-50,000/h"
            in said)
    assert render.backfill_plan_json(plan)["customers"][0]["rates"].startswith("learned")
