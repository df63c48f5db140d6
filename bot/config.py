"""The models of shepherd.yml, and loading it with every problem reported at once.

Credentials are never in the file: a region names the environment variables that hold them.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from bot.errors import ConfigError
from commands.limits import Limits
from commands.models import DateRange, PurgePolicy, Throughput, WindowPolicy

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
TASK_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(Strict):
    name: str
    engine: Literal["clickhouse", "chdb"] = "clickhouse"
    host: str = "localhost"
    port: int = Field(default=8443, ge=1, le=65535)
    database: str = "default"
    tls: bool = True
    ca_file: str | None = None  # a private CA (PEM path) that signs the server's certificate; None: system roots
    username_env: str | None = None  # name of the environment variable holding the user
    password_env: str | None = None  # name of the environment variable holding the password

    @field_validator("database")
    @classmethod
    def _db_identifier(cls, v: str) -> str:
        if not IDENTIFIER.fullmatch(v):
            raise ValueError(f"database {v!r} is not a plain identifier (letters, digits, _)")
        return v


class Cluster(Strict):
    """A cluster's topology: `regions` (one server, reached through the first region that answers; with
    `on_cluster`, a ClickHouse cluster whose deletes run `ON CLUSTER` that name), or `shards` (every
    shard's own endpoint: Shepherd sends each delete to every shard and reads counts from all of them)."""

    name: str
    shards: tuple[Region, ...] = ()  # every shard, each a `Region`-shaped endpoint (name: the shard's)
    regions: tuple[Region, ...] = Field(default=(), validate_default=True)  # in order of preference
    on_cluster: str | None = None  # the ClickHouse cluster (remote_servers) its mutations run ON CLUSTER
    # The Temporal task queue of the workers near this cluster: its windows and chunks run there.
    # None: Shepherd's own (control) queue.
    task_queue: str | None = None

    @field_validator("regions")
    @classmethod
    def _regions_or_shards(cls, v: tuple[Region, ...], info: ValidationInfo) -> tuple[Region, ...]:
        if bool(v) == bool(info.data.get("shards")):
            raise ValueError("list at least one region, or shards instead (not both)")
        return v

    @model_validator(mode="after")
    def _topology(self) -> Cluster:
        if self.shards and self.on_cluster:
            raise ValueError(f"cluster {self.name}: on_cluster goes with regions, not with shards")
        names = [s.name for s in self.shards]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster {self.name}: shard names repeat")
        if len({s.database for s in self.shards}) > 1:
            raise ValueError(f"cluster {self.name}: every shard must hold the same database")
        return self

    @field_validator("on_cluster")
    @classmethod
    def _on_cluster(cls, v: str | None) -> str | None:
        if v is not None and not IDENTIFIER.fullmatch(v):
            raise ValueError(f"on_cluster {v!r} is not a plain identifier (letters, digits, _)")
        return v

    @property
    def topology(self) -> str:
        return "shards" if self.shards else "on_cluster" if self.on_cluster else "single"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.fullmatch(v):
            raise ValueError(f"cluster name {v!r} must be lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("task_queue")
    @classmethod
    def _task_queue(cls, v: str | None) -> str | None:
        if v is not None and not TASK_QUEUE.fullmatch(v):
            raise ValueError(f"task_queue {v!r} must be 1-200 letters, digits, '.', '_', '-' or '/'")
        return v


class CustomerEntry(Strict):
    name: str
    cluster: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.fullmatch(v):
            raise ValueError(f"customer name {v!r} must be lower-case letters, digits, '.', '_' or '-'")
        return v


class Customers(Strict):
    # discover: read (id, cluster) from the source customers table at start; `explicit` is added to it.
    discover: bool = False
    explicit: tuple[CustomerEntry, ...] = ()


class SourceTables(Strict):
    """Postgres table and column names (identifiers, validated and quoted before use)."""

    customers: str = "customers"
    conversations: str = "conversations"
    scorecards: str = "scorecards"
    scores: str = "scores"
    customer_id: str = "customer_id"
    created_at: str = "created_at"
    scorecard_type: str = "scorecard_type"

    @model_validator(mode="after")
    def _identifiers(self) -> SourceTables:
        for field, value in self.model_dump().items():
            if not IDENTIFIER.fullmatch(value):
                raise ValueError(f"{field}: {value!r} is not a plain SQL identifier")
        return self


class TargetTables(Strict):
    """ClickHouse table names in each cluster's database."""

    scorecards: str = "scorecards"
    scores: str = "scores"

    @model_validator(mode="after")
    def _identifiers(self) -> TargetTables:
        for field, value in self.model_dump().items():
            if not IDENTIFIER.fullmatch(value):
                raise ValueError(f"{field}: {value!r} is not a plain SQL identifier")
        return self


class AutopilotSettings(Strict):
    """`--parallel auto`: how the job finds its parallelism (between `floor` and backfill.max_parallel)."""

    floor: int = Field(default=1, ge=1)
    start: int = Field(default=2, ge=1)
    hold_s: float = Field(default=600.0, gt=0)  # at least this long between two changes of N
    settle_s: float = Field(default=120.0, ge=0)  # readings this soon after a change are not judged
    interval_s: float = Field(default=60.0, gt=0)  # how often the job reads its windows' heartbeats
    min_gain: float = Field(default=0.10, gt=0)  # a higher N must raise the aggregate rate by this fraction
    collapse_ratio: float = Field(default=0.5, gt=0, le=1)  # per-window rate vs its best: contention below it


class BackfillSettings(Strict):
    default_parallel: int = Field(default=4, ge=1)
    max_parallel: int = Field(default=16, ge=1)
    # "auto": a job without --parallel N runs the autopilot; "fixed": it runs default_parallel windows at once.
    parallel: Literal["auto", "fixed"] = "fixed"
    autopilot: AutopilotSettings = Field(default_factory=AutopilotSettings)
    window_workflow: str = "BackfillWindow"
    window_task_queue: str | None = None  # None: Shepherd's own task queue
    # For an in-house window workflow taking a mapping: {their_key: our_field}, our fields being
    # job_id, customer, cluster, start, end, conversations, est_hours_hi. Empty: Shepherd's WindowInput.
    window_input_mapping: dict[str, str] = Field(default_factory=dict)
    progress_done_key: str = "ReindexedConversations"
    progress_total_key: str = "TotalConversationCount"
    batch_rows: int = Field(default=50_000, ge=1)
    pause_between_days_s: float = Field(default=0.0, ge=0)  # breathing room for the source database
    # A window or purge chunk whose worker stops heartbeating this long is retried (on any worker).
    # Heartbeats reach Temporal every HEARTBEAT_EVERY_S (bot/temporal/worker.py): the default is six.
    heartbeat_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    # A job's history past this many events continues as new once its running windows end (Temporal
    # fails a history at 51,200 events; a window costs about 4; replaying 10,000 events took 4.4 s).
    continue_after_events: int = Field(default=5_000, ge=20, le=40_000)

    @model_validator(mode="after")
    def _parallel(self) -> BackfillSettings:
        if self.default_parallel > self.max_parallel:
            raise ValueError("default_parallel must not exceed max_parallel")
        if self.autopilot.floor > self.max_parallel:
            raise ValueError("autopilot.floor must not exceed max_parallel")
        return self


class MonitorSettings(Strict):
    interval_s: float = Field(default=60.0, gt=0)  # how often running jobs are read and their messages edited
    stall_minutes: float = Field(default=15.0, gt=0)  # a window whose heartbeat has not advanced this long
    contention_ratio: float = Field(default=0.5, gt=0, le=1)  # every running window below this x expected rate
    windows_listed: int = Field(default=12, ge=1)  # progress bars in the status message; the rest summarised
    # A job recorded as starting this long without a workflow is marked "did not start" (a start in flight is younger).
    start_grace_s: float = Field(default=120.0, ge=0)
    # A running job whose task queue (its own or a cluster's) has had no worker polling this long says so.
    no_worker_minutes: float = Field(default=2.0, gt=0)


class VerifySettings(Strict):
    after_jobs: bool = False  # verify what a backfill or purge touched once it has finished; verdict in its thread


class LookupSettings(Strict):
    attempts_per_region: int = Field(default=4, ge=1)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)


class Access(Strict):
    operators: tuple[str, ...] = ()  # Slack user ids (or user group handles as "@group")
    approvers: tuple[str, ...] = ()
    allowed_channels: tuple[str, ...] = ()  # empty: any channel
    approvals_required: int = Field(default=1, ge=1)
    approval_ttl_minutes: int = Field(default=30, ge=1)


class SlackSettings(Strict):
    """What Shepherd sends people beyond the channel: direct messages and the App Home tab."""

    approver_dms: bool = True  # every eligible approver gets a purge request in a direct message
    requester_dms: bool = True  # the requester is told in a DM: approved, rejected, expired, and the job's end
    home_tab: bool = True  # a per-person Home tab: approvals waiting, open jobs, recent results, Plan a backfill
    home_min_interval_s: float = Field(default=2.0, ge=0)  # a person's Home tab is republished at most this often
    dm_concurrency: int = Field(default=4, ge=1, le=20)  # direct messages sent at once in a fan-out


class DefaultRange(Strict):
    """The date range a command covers when it names none: fixed dates, or the last `days` days."""

    start: date | None = None
    end: date | None = None
    days: int = Field(default=51, ge=1)

    @model_validator(mode="after")
    def _both(self) -> DefaultRange:
        if (self.start is None) != (self.end is None):
            raise ValueError("set both start and end, or neither")
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def resolve(self, today: date) -> DateRange:
        if self.start is not None and self.end is not None:
            return DateRange(start=self.start, end=self.end)
        end = today - timedelta(days=1)
        return DateRange(start=end - timedelta(days=self.days - 1), end=end)


class ShepherdConfig(Strict):
    timezone: str = "UTC"
    default_range: DefaultRange = DefaultRange()
    clusters: tuple[Cluster, ...] = Field(min_length=1)
    customers: Customers = Customers()
    source: SourceTables = SourceTables()
    target: TargetTables = TargetTables()
    appeal_types: tuple[int, ...] = (1, 2, 3)
    windows: WindowPolicy = WindowPolicy()
    throughput: Throughput = Throughput()
    purge: PurgePolicy = PurgePolicy()
    backfill: BackfillSettings = BackfillSettings()
    lookup: LookupSettings = LookupSettings()
    monitor: MonitorSettings = MonitorSettings()
    verify: VerifySettings = VerifySettings()
    access: Access = Access()
    slack: SlackSettings = SlackSettings()
    limits: Limits = Limits()

    @model_validator(mode="after")
    def _references(self) -> ShepherdConfig:
        names = [c.name for c in self.clusters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"cluster names repeat: {', '.join(dupes)}")
        unknown = sorted({c.cluster for c in self.customers.explicit} - set(names))
        if unknown:
            raise ValueError(f"customers name unknown clusters: {', '.join(unknown)}")
        if not self.customers.discover and not self.customers.explicit:
            raise ValueError("customers: set discover: true or list customers under explicit")
        if not self.appeal_types:
            raise ValueError("appeal_types must list at least one scorecard type")
        return self

    def task_queues(self) -> tuple[str, ...]:
        """The task queues clusters name (each once, in config order); the control queue is not among them."""
        return tuple(dict.fromkeys(c.task_queue for c in self.clusters if c.task_queue))

    def cluster_queue(self, name: str) -> str | None:
        """The task queue of `name`'s workers (None: the control queue, or an unknown cluster)."""
        return next((c.task_queue for c in self.clusters if c.name == name), None)

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)


def format_validation_error(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {msg}")
    return problems


def parse_config(data: Any, source: str = "shepherd.yml") -> ShepherdConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of settings"])
    try:
        return ShepherdConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, format_validation_error(err)) from None


def load_config(path: Path) -> ShepherdConfig:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(str(path), [f"cannot read the file: {err.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f"line {where.line + 1}: " if where is not None else ""
        raise ConfigError(str(path), [f"{line}not valid YAML ({getattr(err, 'problem', err)})"]) from None
    return parse_config(data, str(path))
