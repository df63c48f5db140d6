"""Typed values shared by the planners: policies, volumes, windows, chunks and plans.

Everything here is pure data (pydantic models, frozen). Dates are `datetime.date`; every
date range is inclusive at both ends, as in the plans Shepherd shows and the JSON it prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DateRange(Frozen):
    start: date
    end: date  # inclusive

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"range end {self.end} is before its start {self.start}")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


# ---- policies (from configuration) -------------------------------------------------------


class WindowRule(Frozen):
    """Customers whose average daily volume is at least `min_daily` get `window_days`."""

    min_daily: int = Field(ge=0)
    window_days: int = Field(ge=1)


class WindowPolicy(Frozen):
    # Evaluated from the highest `min_daily` down; the first rule that matches wins.
    rules: tuple[WindowRule, ...] = (
        WindowRule(min_daily=80_000, window_days=5),
        WindowRule(min_daily=30_000, window_days=7),
        WindowRule(min_daily=0, window_days=10),
    )
    max_window_hours: float = Field(default=16.0, gt=0)


class Throughput(Frozen):
    """Conversations reindexed per hour by one window workflow: pessimistic `low`, optimistic `high`."""

    low: float = Field(default=35_000, gt=0)
    high: float = Field(default=50_000, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Throughput:
        if self.high < self.low:
            raise ValueError("throughput high must be >= low")
        return self


class PurgePolicy(Frozen):
    max_rows_per_mutation: int = Field(default=1_000_000, ge=1)
    strategy: Literal["mutation", "lightweight"] = "mutation"
    max_unfinished_mutations: int = Field(default=2, ge=1)
    drift_tolerance: float = Field(default=0.01, ge=0)  # fraction of the planned rows
    allow_drop_partition: bool = False


# ---- volumes (read from the stores, passed in) --------------------------------------------


# Plain named tuples, not models: a year of 95 customers is ~35K of each, read from our own GROUP BY
# queries (counts, never negative); a pydantic model would cost ~5 us apiece to build.


class DayVolume(NamedTuple):
    """Backfill volume of one customer on one day, from the source (Postgres)."""

    customer: str
    day: date
    conversations: int  # == non-appeal scorecards to copy


class PurgeDayCount(NamedTuple):
    """Rows to delete for one customer on one day in one cluster, from ClickHouse."""

    cluster: str
    customer: str
    day: date
    scorecards: int
    scores: int


class PurgeDays(NamedTuple):
    """One customer's rows to delete in one cluster on each day that has any: days ascending, each once;
    scorecards[i] and scores[i] are days[i]'s rows."""

    cluster: str
    customer: str
    days: Sequence[date]
    scorecards: Sequence[int]
    scores: Sequence[int]


class CustomerRef(Frozen):
    name: str
    cluster: str


# ---- backfill plan ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Window:
    customer: str
    cluster: str
    start: date
    end: date  # inclusive
    conversations: Annotated[int, Field(ge=0)]
    est_hours: tuple[float, float]  # (optimistic, pessimistic)


class CustomerBackfillPlan(Frozen):
    customer: str
    cluster: str
    daily_avg: float
    window_days: int
    rule: str  # human-readable reason, e.g. ">= 80,000/day -> 5d" or "--window 3d"
    windows: tuple[Window, ...]
    warnings: tuple[str, ...] = ()
    rates: str = ""  # where its estimates' rates came from: "configured: ..." or "learned from N past windows: ..."


class BackfillPlan(Frozen):
    range: DateRange
    customers: tuple[CustomerBackfillPlan, ...]
    parallel: int = Field(ge=1)
    sequential_hours: tuple[float, float]
    makespan_hours: tuple[float, float]
    lower_bound_hours: tuple[float, float]
    plan_hash: str
    # Said beside the plan (e.g. the range clipped to the days with data); never stored nor hashed.
    notes: tuple[str, ...] = Field(default=(), exclude=True)

    @property
    def windows(self) -> list[Window]:
        return [w for c in self.customers for w in c.windows]


# ---- purge plan ------------------------------------------------------------------------

PurgeTable = Literal["scores", "scorecards"]


@dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Chunk:
    cluster: str
    customer: str
    table: PurgeTable
    start: date
    end: date  # inclusive
    rows: Annotated[int, Field(ge=0)]
    over_cap: bool = False  # a single day whose rows exceed the cap
    # Key-range chunks (commands/key_chunks.py): the partition the mutation is scoped to and the range
    # of the table's sort key (after customer_id) it deletes; none of them on a whole-day chunk.
    partition: str | None = None  # partition ID (`IN PARTITION ID`)
    key: tuple[str, ...] = ()  # sort-key columns after customer_id
    key_types: tuple[str, ...] = ()  # their ClickHouse types, to bind `lo` and `hi`
    lo: tuple[str, ...] | None = None  # the first row's key (inclusive); None: from the start of `start`
    hi: tuple[str, ...] | None = None  # the next chunk's first key (exclusive); None: through `end`


class ClusterPurgePlan(Frozen):
    cluster: str
    chunks: tuple[Chunk, ...]  # in execution order


class PurgePlan(Frozen):
    range: DateRange
    types: tuple[int, ...]
    clusters: tuple[ClusterPurgePlan, ...]
    total_scorecards: int
    total_scores: int
    max_rows_per_mutation: int
    plan_hash: str
    notes: tuple[str, ...] = Field(default=(), exclude=True)  # as BackfillPlan.notes
    # sum over (cluster, customer, table, partition) of ceil(rows / cap): the fewest mutations possible
    mutations_lower_bound: int | None = None
