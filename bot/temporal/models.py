"""Inputs and results of Shepherd's workflows and activities: one dataclass per call.

Plain dataclasses of str/int/float/list so Temporal's default JSON converter carries them and
an in-house workflow can be given the same shapes. Dates travel as ISO strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commands.autopilot import Policy as AutopilotPolicy

# ---- backfill ---------------------------------------------------------------------------


@dataclass
class WindowSpec:
    key: str  # "{customer}:{start}:{end}", unique within a job
    customer: str
    cluster: str
    start: str  # ISO date, inclusive
    end: str  # ISO date, inclusive
    conversations: int  # planned total
    est_hours_hi: float  # pessimistic estimate, sets the start-to-close timeout
    task_queue: str | None = None  # the cluster's task queue; None: the job's window_task_queue or its own


@dataclass
class BackfillJobInput:
    job_id: str
    plan_hash: str
    windows: list[WindowSpec]  # in the plan's schedule order (largest first); [] when `table` carries them
    parallel: int
    start_at: str | None = None  # ISO datetime (UTC); the job sleeps on a durable timer until then
    window_workflow: str = "BackfillWindow"
    window_task_queue: str | None = None  # None: the job's own task queue
    # Which input shape the window workflow takes: "shepherd" (WindowInput) or "mapping"
    # (a dict built from `input_mapping`: {their_key: our_field}).
    input_mapping: dict[str, str] = field(default_factory=dict)
    run: int = 1  # 1 for the first run; retries are later runs of the same job
    heartbeat_timeout_s: float = 300.0
    max_attempts: int = 5
    progress_done_key: str = "ReindexedConversations"
    progress_total_key: str = "TotalConversationCount"
    # The windows' child workflows carry search attributes (ShepherdKind "backfill-window") only when the
    # namespace has them registered (the job itself started with them); False in older inputs.
    tag_windows: bool = False
    requester: str = ""
    # `--parallel auto`: the job sets its own parallelism from the windows' heartbeat rates, within the
    # policy (which `/backfill throttle JOB auto` also needs, to turn it back on). None in older inputs.
    autopilot: bool = False
    autopilot_policy: AutopilotPolicy | None = None
    autopilot_changes: list[ParallelChange] = field(default_factory=list)  # carried over a continue-as-new
    # Newer inputs: the windows in columns (~20 bytes each, not ~190), and after a continue-as-new what the
    # earlier runs of this job run did (done windows are not run again).
    table: WindowTable | None = None
    carried: StateTable | None = None
    paused: bool = False
    # Past this many history events the job stops starting windows, lets the running ones end and
    # continues as new (Temporal fails a history at 51,200 events; a window costs about 4; a worker that
    # lost the run from its cache replays the whole history in one workflow task: ~2 s for 5,000 events).
    continue_after_events: int = 5_000


@dataclass
class WindowInput:
    job_id: str
    customer: str
    cluster: str
    start: str
    end: str
    conversations: int = 0
    est_hours_hi: float = 1.0
    heartbeat_timeout_s: float = 300.0
    max_attempts: int = 5
    progress_done_key: str = "ReindexedConversations"
    progress_total_key: str = "TotalConversationCount"


@dataclass
class WindowResult:
    customer: str
    start: str
    end: str
    conversations: int
    scorecards: int
    scores: int
    region: str
    lookup_attempts: int
    resumed_from: str | None  # the day a retried attempt resumed from (None: from the start)
    seconds: float
    attempt: int = 1  # the activity attempt that finished the window
    worker: str = ""  # the Temporal identity of the worker that ran it ("" from older workers)


@dataclass
class WindowState:
    key: str
    customer: str
    cluster: str
    start: str
    end: str
    state: str = "pending"  # pending | running | done | failed | cancelled
    attempt: int = 0  # child workflow runs started for this window in this job run
    done: int = 0
    total: int = 0
    started: str | None = None
    finished: str | None = None
    last_failure: str | None = None
    workflow_id: str | None = None
    region: str | None = None
    resumed_from: str | None = None  # a retried attempt resumed from this day (its last heartbeat)
    day: str | None = None  # the day being copied (from the running activity's heartbeat)
    heartbeat_at: str | None = None  # ISO time of the running activity's last heartbeat (from describe())
    worker: str | None = None  # the worker running it (from describe()) or that finished it (its result)


@dataclass
class ParallelChange:
    """One change of a job's parallelism, by the autopilot or by hand (throttle)."""

    seq: int  # 1, 2, ... within the job run
    at: str  # ISO time
    from_n: int
    to_n: int
    by: str  # autopilot | hand
    reason: str = ""


@dataclass
class HeartbeatsInput:
    workflow_ids: list[str]
    done_key: str = "ReindexedConversations"


@dataclass
class HeartbeatSample:
    workflow_id: str
    done: int
    at: float | None  # the last heartbeat's time (epoch seconds); None: no heartbeat yet


@dataclass
class BackfillProgress:
    job_id: str
    state: str  # waiting | running | paused | cancelling | done | failed | cancelled
    parallel: int
    paused: bool
    start_at: str | None
    windows: list[WindowState]
    run: int = 1  # 1 for the first run of the job; a retry is run 2, 3 ...
    autopilot: bool = False  # the autopilot sets `parallel` now
    parallel_changes: list[ParallelChange] = field(default_factory=list)


# A job of many windows travels in columns (bot/temporal/window_table.py converts).


@dataclass
class WindowTable:
    """The windows of a job, in schedule order; window i is column[i] of every list."""

    first_day: str = ""  # ISO date; `start` counts days after it
    customers: list[str] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    customer: list[int] = field(default_factory=list)  # index into customers
    cluster: list[int] = field(default_factory=list)  # index into clusters
    start: list[int] = field(default_factory=list)  # days after first_day
    days: list[int] = field(default_factory=list)  # end = start + days - 1
    conversations: list[int] = field(default_factory=list)  # planned
    est_centihours: list[int] = field(default_factory=list)  # est_hours_hi in hundredths of an hour, rounded up
    # The task queue of each of `clusters` (same order; None: the job's own). Empty in tables made before it.
    queues: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.start)


@dataclass
class StateTable:
    """What a job run knows of each window of its WindowTable (same order)."""

    epoch: str = ""  # ISO datetime the first `started` counts from
    state: str = ""  # one letter a window (STATE_LETTERS)
    attempt: list[int] = field(default_factory=list)
    total_change: list[int] = field(default_factory=list)  # total - planned conversations (a done window's count)
    # Whole seconds: `started` after the previous window that started (the first: after epoch), small
    # numbers since windows start in table order; `took` from started to finished. None: not yet.
    started: list[int | None] = field(default_factory=list)
    took: list[int | None] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    region: list[int] = field(default_factory=list)  # index into regions, -1: none
    notes: list[list[Any]] = field(default_factory=list)  # [index, last_failure, resumed_from], only where set
    workers: list[str] = field(default_factory=list)  # the Temporal identities of the workers that ran windows
    worker: list[int] = field(default_factory=list)  # index into workers, -1: none (empty in older tables)


@dataclass
class BackfillProgressTable:
    """The `progress_table` query: BackfillProgress with its windows in columns."""

    job_id: str
    state: str
    parallel: int
    paused: bool
    start_at: str | None
    windows: WindowTable
    states: StateTable
    run: int = 1
    autopilot: bool = False
    parallel_changes: list[ParallelChange] = field(default_factory=list)


@dataclass
class JobOutcome:
    """What a BackfillJob started from a WindowTable returns (the windows are in `progress_table`)."""

    job_id: str
    windows: int
    done: int
    failed: int
    cancelled: int


# ---- purge ------------------------------------------------------------------------------


@dataclass
class ChunkSpec:
    index: int  # position in the cluster's chain
    customer: str
    table: str  # "scores" | "scorecards"
    start: str
    end: str
    rows: int  # planned rows
    over_cap: bool = False
    # A key-range chunk: its partition ID and sort-key range (commands.models.Chunk); None/() on a day chunk.
    partition: str | None = None
    key: list[str] = field(default_factory=list)
    key_types: list[str] = field(default_factory=list)
    lo: list[str] | None = None
    hi: list[str] | None = None


@dataclass
class PurgeInput:
    job_id: str
    plan_hash: str
    types: list[int]
    clusters: dict[str, list[ChunkSpec]]  # cluster -> chunks in plan order
    strategy: str = "mutation"  # mutation | lightweight
    max_unfinished_mutations: int = 2
    drift_tolerance: float = 0.01
    heartbeat_timeout_s: float = 300.0
    max_attempts: int = 5
    task_queues: dict[str, str] = field(default_factory=dict)  # cluster -> its task queue (absent: the job's)
    # Past this many history events the job continues as new once its running chunks end (0: never, as
    # purges started before this existed); also when Temporal suggests it.
    continue_after_events: int = 0
    carried: PurgeCarried | None = None  # a continued run: what the runs before it did
    # New purges send their chunks here instead of `clusters`: {cluster: [ChunkSpec fields]} as JSON. Thousands
    # of ChunkSpec dataclasses take seconds to decode in the workflow sandbox (type hints read per object),
    # past the 2 s a workflow task may take; one string decodes in milliseconds.
    packed: str = ""


@dataclass
class PurgeCarried:
    """What the runs before a continued one did, compactly (a plan may hold thousands of chunks)."""

    rows_deleted: dict[str, list[int]]  # cluster -> per chunk in plan order: rows deleted, or -1 not done
    workers: list[str] = field(default_factory=list)  # the workers that ran them
    worker: dict[str, list[int]] = field(default_factory=dict)  # cluster -> per chunk: index in workers, -1 none
    paused: bool = False
    runs: int = 1  # runs before this one


@dataclass
class ChunkInput:
    job_id: str
    cluster: str
    chunk: ChunkSpec
    types: list[int]
    strategy: str
    max_unfinished_mutations: int
    drift_tolerance: float
    # The chunk started just before this one, still running (on the other table): its guard is
    # rechecked with this chunk's, so no chunk runs after one whose data changed.
    previous: ChunkSpec | None = None


@dataclass
class ChunkResult:
    index: int
    rows_deleted: int
    mutation_id: str | None
    seconds: float
    region: str
    worker: str = ""  # the Temporal identity of the worker that ran it


@dataclass
class ChunkState:
    index: int
    customer: str
    table: str
    start: str
    end: str
    rows: int
    state: str = "pending"  # pending | running | done | failed | cancelled | skipped
    rows_deleted: int = 0
    started: str | None = None
    finished: str | None = None
    last_failure: str | None = None
    worker: str | None = None


@dataclass
class PurgeProgress:
    job_id: str
    state: str  # running | paused | done | failed | cancelled | stopped (drift)
    paused: bool
    stop_reason: str | None
    clusters: dict[str, list[ChunkState]]
    runs: int = 1  # 2 and more: the job continued as new (a long plan)


# ---- locks ------------------------------------------------------------------------------


@dataclass
class ReleaseLocksInput:
    job_id: str
    state: str | None = None  # the job's final state, recorded in shepherd.jobs with the release
    error: str | None = None
