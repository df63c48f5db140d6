"""A finished job's story: planned vs actual per window and N over time, as the summary and the chart show them."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from bot.backfill.chart import job_chart
from commands.job_story import NChange, n_path, planned_vs_actual, story
from commands.progress import WindowSnap

T0 = datetime(2026, 2, 21, 22, 0, tzinfo=UTC)


def snap(i: int, started_min: float, took_min: float | None, state: str = "done") -> WindowSnap:
    start, end = f"2026-01-{1 + 5 * i:02d}", f"2026-01-{5 + 5 * i:02d}"
    began = T0 + timedelta(minutes=started_min)
    return WindowSnap(f"hilton:{start}:{end}", "hilton", "chat-prod", start, end, state, 1, 100, 100, began,
                      began + timedelta(minutes=took_min) if took_min is not None else None)


def plan(windows: int, est_hours: tuple[float, float]) -> dict[str, object]:
    return {"customers": [{"customer": "hilton", "windows": [
        {"customer": "hilton", "start": f"2026-01-{1 + 5 * i:02d}", "end": f"2026-01-{5 + 5 * i:02d}",
         "est_hours": list(est_hours)} for i in range(windows)]}],
        "parallel": 2, "makespan_hours": [1.0, 1.5]}


def test_each_window_is_judged_against_its_own_estimate_and_the_job_against_the_plan() -> None:
    # estimates 30-45 min: one inside, one slower, one faster
    s = story("b-000001", plan(3, (0.5, 0.75)), [snap(0, 0, 40), snap(1, 0, 60), snap(2, 40, 20)], [], 2, False)
    assert [w.verdict for w in s.windows] == ["within", "slower", "faster"]
    assert s.wall_s == 60 * 60
    assert planned_vs_actual(s) == ("took 1h00m (planned 1h00m to 1h30m at 2 at once); "
                                    "1 of 3 windows within their estimate, 1 slower, 1 faster")


def test_n_over_time_follows_the_changes_and_the_windows_that_really_ran() -> None:
    changes = [NChange(T0 + timedelta(minutes=10), 2, 3, "autopilot"),
               NChange(T0 + timedelta(minutes=30), 3, 2, "hand")]
    s = story("b-000002", plan(3, (0.5, 0.75)), [snap(0, 0, 40), snap(1, 0, 60), snap(2, 12, 20)], changes, 2, False)
    assert s.allowed == ((0.0, 2), (600.0, 3), (1800.0, 2))
    assert s.running == ((0.0, 2), (720.0, 3), (1920.0, 2), (2400.0, 1), (3600.0, 0))
    assert n_path(s) == "2 -> 3 -> 2" and s.autopilot  # the autopilot set N at some time


def test_a_window_that_never_finished_is_not_judged() -> None:
    s = story("b-000003", plan(2, (0.5, 0.75)), [snap(0, 0, 40), snap(1, 0, None, "cancelled")], [], 2, False)
    assert s.counts() == {"within": 1, "slower": 0, "faster": 0, "unknown": 1}
    assert "1 of 1 windows within" in planned_vs_actual(s)


def test_the_chart_is_a_png_of_readable_size() -> None:
    changes = [NChange(T0 + timedelta(minutes=10), 2, 3, "autopilot")]
    png = job_chart(story("b-000004", plan(3, (0.5, 0.75)), [snap(0, 0, 40), snap(1, 0, 60), snap(2, 12, 20)],
                          changes, 3, True))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (900, 585)
