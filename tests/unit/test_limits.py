"""The guard rails at the edges (commands/limits.py): limits only go down from chat, dates stay in a sane
span, --at inside its horizon, ranges clipped to the data, plans under a size cap."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from commands.limits import (
    Limits,
    check_max_rows,
    check_parallel,
    check_plan_size,
    check_span,
    check_start_at,
    check_types,
    clip_to_data,
    start_moment,
)
from commands.models import DateRange
from commands.verbs import StartAt

NOW = datetime(2026, 2, 24, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def test_max_rows_only_goes_down() -> None:
    check_max_rows(None, 1_000_000)
    check_max_rows(1_000_000, 1_000_000)
    check_max_rows(5, 1_000_000)
    with pytest.raises(ValueError, match=r"--max-rows 100,000,000,000,000,000,000 is above the configured cap "
                                         r"of 1,000,000 rows per mutation \(purge.max_rows_per_mutation\)"):
        check_max_rows(10**20, 1_000_000)


def test_parallel_at_most_the_configured_maximum() -> None:
    check_parallel(16, 16)
    check_parallel(None, 16)
    with pytest.raises(ValueError, match=r"--parallel 17 must be between 1 and 16.*backfill.max_parallel"):
        check_parallel(17, 16)


def test_types_a_subset_of_the_appeal_types() -> None:
    check_types((1, 3), (1, 2, 3))
    check_types(None, (1, 2, 3))
    with pytest.raises(ValueError, match=r"--types: 4, 5 are not purgeable; the allowed types are 1, 2, 3"):
        check_types((2, 4, 5), (1, 2, 3))
    with pytest.raises(ValueError, match=r"--types: 0 is not purgeable"):
        check_types((0,), (1, 2, 3))


def test_dates_inside_the_span() -> None:
    limits = Limits()
    assert limits.latest(TODAY) == date(2027, 12, 31)
    check_span(date(2000, 1, 1), date(2027, 12, 31), limits, TODAY)
    with pytest.raises(ValueError, match=r"--from 0001-01-01 is before 2000-01-01"):
        check_span(date(1, 1, 1), None, limits, TODAY)
    with pytest.raises(ValueError, match=r"--to 9999-12-31 is after 2027-12-31"):
        check_span(None, date.max, limits, TODAY)
    fixed = Limits(earliest_date=date(2020, 1, 1), latest_date=date(2030, 1, 1))
    check_span(date(2029, 12, 31), None, fixed, date(9999, 12, 31))
    assert Limits().latest(date(9999, 6, 1)) == date(9999, 12, 31)  # no overflow at the calendar's end


def test_a_span_that_ends_before_it_starts_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="before earliest_date"):
        Limits(earliest_date=date(2020, 1, 1), latest_date=date(2019, 1, 1))


def test_at_in_the_past_or_beyond_the_horizon_is_refused() -> None:
    check_start_at(NOW + timedelta(minutes=1), NOW, 14)
    check_start_at(NOW + timedelta(days=14), NOW, 14)
    with pytest.raises(ValueError, match=r"^--at 2020-01-01 00:00 UTC is in the past; leave --at out to start now$"):
        check_start_at(datetime(2020, 1, 1, tzinfo=UTC), NOW, 14)
    with pytest.raises(ValueError, match=r"more than 14 days ahead"):
        check_start_at(NOW + timedelta(days=14, seconds=1), NOW, 14)


@pytest.mark.parametrize("moment", [
    datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-23))),
    datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=23))),
    datetime.max.replace(tzinfo=UTC),
])
def test_at_at_the_calendars_edges_is_a_clear_refusal(moment: datetime) -> None:
    with pytest.raises(ValueError, match="--at"):
        check_start_at(moment, NOW, 14)


def test_start_moment_resolves_a_weekday_and_checks_it() -> None:
    sat = start_moment(StartAt(weekday=5, at=time(22, 0)), NOW, 14)
    assert sat == datetime(2026, 2, 28, 22, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="in the past"):
        start_moment(StartAt(moment=datetime(2026, 2, 24, 11, 0)), NOW, 14)  # naive: the configured zone
    with pytest.raises(ValueError, match="--at"):
        start_moment(StartAt(weekday=0, at=time(1, 0)), datetime(9999, 12, 31, 12, 0, tzinfo=UTC), 14)


def test_clip_to_the_days_with_data() -> None:
    wide = DateRange(start=date(2000, 1, 1), end=date(2027, 12, 31))
    rng, note = clip_to_data(wide, date(2026, 1, 3), date(2026, 2, 22), "backfill")
    assert rng == DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))
    assert note == "clipped to 2026-01-03 .. 2026-02-22, the days with data"
    inside = DateRange(start=date(2026, 1, 10), end=date(2026, 1, 20))
    assert clip_to_data(inside, date(2026, 1, 3), date(2026, 2, 22), "backfill") == (inside, None)
    with pytest.raises(ValueError, match=r"^nothing to delete in that range \(2030-01-01 to 2030-02-01\)"):
        clip_to_data(DateRange(start=date(2030, 1, 1), end=date(2030, 2, 1)), None, None, "delete")
    with pytest.raises(ValueError, match="nothing to verify in that range"):
        clip_to_data(inside, date(2026, 2, 1), date(2026, 2, 22), "verify")


def test_plan_size_cap() -> None:
    check_plan_size(10_000, 10_000, "windows", "limits.max_windows")
    with pytest.raises(ValueError, match=r"the plan has 365,211 windows, more than the configured maximum of "
                                         r"10,000 \(limits.max_windows\)"):
        check_plan_size(365_211, 10_000, "windows", "limits.max_windows")
