"""The typed commands the grammar produces: one pydantic model per thing a person can ask."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StartAt(_Cmd):
    """`--at`: an exact moment, or the next given weekday and time in the configured timezone."""

    moment: datetime | None = None
    weekday: int | None = Field(default=None, ge=0, le=6)  # 0 = Monday
    at: time | None = None

    def resolve(self, now: datetime) -> datetime:
        """The start moment; `now` must be timezone-aware, in the configured timezone."""
        if self.moment is not None:
            return self.moment if self.moment.tzinfo else self.moment.replace(tzinfo=now.tzinfo)
        assert self.weekday is not None and self.at is not None
        days = (self.weekday - now.weekday()) % 7
        candidate = datetime.combine(now.date() + timedelta(days=days), self.at, tzinfo=now.tzinfo)
        return candidate if candidate > now else candidate + timedelta(days=7)


class BackfillArgs(_Cmd):
    customers: tuple[str, ...] | None  # None: all
    start: date | None = None
    end: date | None = None
    window_days: int | None = None  # None: auto
    parallel: int | None = None
    autopilot: bool | None = None  # --parallel auto: True; --parallel N: False; neither: configuration decides


class PurgeArgs(_Cmd):
    customers: tuple[str, ...] | None
    start: date | None = None
    end: date | None = None
    types: tuple[int, ...] | None = None
    clusters: tuple[str, ...] | None = None
    max_rows: int | None = None


class BackfillPlan(_Cmd):
    kind: Literal["backfill_plan"] = "backfill_plan"
    args: BackfillArgs


class BackfillRun(_Cmd):
    kind: Literal["backfill_run"] = "backfill_run"
    args: BackfillArgs
    start_at: StartAt | None = None
    dry_run: bool = False


class JobStatus(_Cmd):
    kind: Literal["job_status"] = "job_status"
    job: str | None = None


class JobAction(_Cmd):
    kind: Literal["job_action"] = "job_action"
    action: Literal["cancel", "pause", "resume"]
    job: str


class Retry(_Cmd):
    kind: Literal["retry"] = "retry"
    job: str
    failed_only: bool = False


class Throttle(_Cmd):
    kind: Literal["throttle"] = "throttle"
    job: str
    parallel: int | None = Field(default=None, ge=1)  # None with auto
    auto: bool = False  # `throttle JOB auto`: the autopilot sets N again


class PurgePlanCmd(_Cmd):
    kind: Literal["purge_plan"] = "purge_plan"
    args: PurgeArgs


class PurgeRun(_Cmd):
    kind: Literal["purge_run"] = "purge_run"
    args: PurgeArgs


class Verify(_Cmd):
    kind: Literal["verify"] = "verify"
    customers: tuple[str, ...] | None = None
    sample: int | None = None
    start: date | None = None
    end: date | None = None
    types: tuple[int, ...] | None = None
    job: str | None = None
    deep: bool = False  # also compare every row's content (checksums), naming each differing row


class VerifyRepair(_Cmd):
    kind: Literal["verify_repair"] = "verify_repair"
    job: str  # the deep verification whose differences to repair


class LinearDraft(_Cmd):
    kind: Literal["linear_draft"] = "linear_draft"
    ticket: str
    jobs: tuple[str, ...] | None = None
    since: date | None = None


class LinearPost(_Cmd):
    kind: Literal["linear_post"] = "linear_post"
    ticket: str


class LinearWeekly(_Cmd):
    kind: Literal["linear_weekly"] = "linear_weekly"
    team: str | None = None


class Help(_Cmd):
    kind: Literal["help"] = "help"
    topic: str | None = None


class Jobs(_Cmd):
    kind: Literal["jobs"] = "jobs"


Command = Annotated[
    BackfillPlan | BackfillRun | JobStatus | JobAction | Retry | Throttle | PurgePlanCmd | PurgeRun | Verify
    | VerifyRepair | LinearDraft | LinearPost | LinearWeekly | Help | Jobs,
    Field(discriminator="kind"),
]
