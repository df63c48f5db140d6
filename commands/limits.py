"""Guard rails at the edges: what chat may ask for, checked against the configured limits.

Chat can only lower a safety limit (rows per mutation, parallel windows) or narrow a set (purgeable
types); raising one is a change of configuration. Dates stay inside a sane span, `--at` inside a
horizon, plans under a size cap, and a range is clipped to the days that hold data. Every check is
pure: the limits, the clock and the data's bounds are passed in. Each raises `ValueError` with a
message fit to show a person as is; the bot adds the usage line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from pydantic import Field, model_validator

from commands.models import DateRange, Frozen
from commands.verbs import StartAt


class Limits(Frozen):
    """The `limits:` section of shepherd.yml."""

    earliest_date: date = date(2000, 1, 1)
    latest_date: date | None = None  # None: the last day of next year
    at_horizon_days: int = Field(default=14, ge=1, le=3660)  # how far ahead --at may start a job
    max_windows: int = Field(default=10_000, ge=1)  # backfill windows in one plan
    max_chunks: int = Field(default=10_000, ge=1)  # purge chunks in one plan

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.latest_date is not None and self.latest_date < self.earliest_date:
            raise ValueError(f"latest_date {self.latest_date} is before earliest_date {self.earliest_date}")
        return self

    def latest(self, today: date) -> date:
        if self.latest_date is not None:
            return self.latest_date
        return date(min(today.year + 1, date.max.year), 12, 31)


def check_max_rows(max_rows: int | None, cap: int) -> None:
    if max_rows is not None and max_rows > cap:
        raise ValueError(f"--max-rows {max_rows:,} is above the configured cap of {cap:,} rows per mutation "
                         "(purge.max_rows_per_mutation): chat can only lower it; raising it is a change of "
                         "configuration")


def check_parallel(parallel: int | None, maximum: int) -> None:
    if parallel is not None and not 1 <= parallel <= maximum:
        raise ValueError(f"--parallel {parallel} must be between 1 and {maximum}, the configured maximum "
                         "(backfill.max_parallel)")


def check_types(types: Sequence[int] | None, allowed: Sequence[int]) -> None:
    """`--types` must be a subset of the configured appeal types (the only purgeable ones)."""
    if types is None:
        return
    outside = [t for t in types if t not in allowed]
    if outside:
        shown = ", ".join(str(t) for t in outside[:10]) + (" ..." if len(outside) > 10 else "")
        raise ValueError(f"--types: {shown} {'is' if len(outside) == 1 else 'are'} not purgeable; the allowed "
                         f"types are {', '.join(str(t) for t in sorted(allowed))} (appeal_types)")


def check_span(start: date | None, end: date | None, limits: Limits, today: date) -> None:
    """--from/--to inside [earliest_date, latest_date]."""
    latest = limits.latest(today)
    for option, day in (("--from", start), ("--to", end)):
        if day is None:
            continue
        if day < limits.earliest_date:
            raise ValueError(f"{option} {day} is before {limits.earliest_date}, the earliest date Shepherd plans "
                             "for (limits.earliest_date)")
        if day > latest:
            raise ValueError(f"{option} {day} is after {latest}, the latest date Shepherd plans for "
                             "(limits.latest_date)")


def check_start_at(moment: datetime, now: datetime, horizon_days: int) -> None:
    """`--at` resolved to `moment` (aware) must be ahead of `now` (aware), and at most the horizon ahead."""
    shown = _shown(moment)
    try:
        ahead = moment - now
    except OverflowError:
        ahead = timedelta.max if moment.year > now.year else timedelta.min
    if ahead <= timedelta(0):
        raise ValueError(f"--at {shown} is in the past; leave --at out to start now")
    if ahead > timedelta(days=horizon_days):
        raise ValueError(f"--at {shown} is more than {horizon_days} days ahead (limits.at_horizon_days); a job "
                         "waiting that long would hold its customers' locks")


def start_moment(start_at: StartAt, now: datetime, horizon_days: int) -> datetime:
    """`--at` as the moment a job starts (`now` aware, in the configured timezone), checked against the horizon."""
    try:
        moment = start_at.resolve(now)
    except OverflowError:  # a weekday's next date past the calendar's end
        raise ValueError("--at is beyond the calendar's end") from None
    check_start_at(moment, now, horizon_days)
    return moment


def _shown(moment: datetime) -> str:
    text = f"{moment:%Y-%m-%d %H:%M}"
    offset = moment.utcoffset()
    return f"{text} UTC" if offset == timedelta(0) else f"{text} {moment:%z}".strip()


def clip_to_data(rng: DateRange, first: date | None, last: date | None, what: str) -> tuple[DateRange, str | None]:
    """`rng` narrowed to [first, last], the days that hold data, and a note if it changed.

    No data in the range (`first` None) is refused: "nothing to <what> in that range".
    """
    if first is None or last is None or last < rng.start or first > rng.end:
        raise ValueError(f"nothing to {what} in that range ({rng.start} to {rng.end}): no data on those days")
    lo, hi = max(rng.start, first), min(rng.end, last)
    if (lo, hi) == (rng.start, rng.end):
        return rng, None
    return DateRange(start=lo, end=hi), f"clipped to {lo} .. {hi}, the days with data"


def check_plan_size(count: int, maximum: int, what: str, setting: str) -> None:
    if count > maximum:
        raise ValueError(f"the plan has {count:,} {what}, more than the configured maximum of {maximum:,} "
                         f"({setting}); narrow the range or the customers, or use larger windows")
