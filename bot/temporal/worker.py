"""The Temporal worker: Shepherd's workflows and activities on one task queue.

Activities are synchronous (psycopg pools, ClickHouse clients) and run in a thread pool. Run more
workers on the same task queue to share the load.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from bot.backfill.activities import BackfillActivities
from bot.backfill.autopilot import read_window_heartbeats
from bot.backfill.workflows import BackfillJob, BackfillWindow
from bot.purge.activities import PurgeActivities
from bot.purge.workflow import Purge
from bot.temporal.deps import ActivityDeps

# How often a running activity's heartbeat reaches Temporal (at most; the SDK also sends one at 80%
# of the activity's heartbeat timeout when that is shorter). Activities heartbeat at least this often
# themselves (the backfill's keepalive thread: every 2 s; a purge chunk: every poll, at most 1 s), so
# backfill.heartbeat_timeout_s (default 30 s) is six of these: a dead worker's window is retried
# within it, and the monitor's progress is at most this old.
HEARTBEAT_EVERY_S = 5.0


def workflows() -> list[type]:
    return [BackfillJob, BackfillWindow, Purge]


def activities(deps: ActivityDeps) -> list[Any]:
    backfill = BackfillActivities(deps)
    return [backfill.reindex_window, backfill.release_locks, read_window_heartbeats, *PurgeActivities(deps).all()]


def build_worker(client: Client, task_queue: str, deps: ActivityDeps, *, max_activities: int = 16,
                 extra_workflows: Sequence[type] = (), extra_activities: Sequence[Any] = (),
                 heartbeat_throttle: timedelta = timedelta(seconds=HEARTBEAT_EVERY_S),
                 interceptors: Sequence[Interceptor] = (), drain: timedelta = timedelta(0)) -> Worker:
    """A worker running every Shepherd workflow and activity (plus `extra_*`, for tests) on `task_queue`."""
    deps.worker_identity = deps.worker_identity or client.identity
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*workflows(), *extra_workflows],
        activities=[*activities(deps), *extra_activities],
        activity_executor=ThreadPoolExecutor(max_workers=max_activities, thread_name_prefix="activity"),
        max_concurrent_activities=max_activities,
        # Heartbeats reach the server at most this often (and at 80% of the heartbeat timeout):
        # it bounds how fresh the progress the monitor reads can be.
        max_heartbeat_throttle_interval=heartbeat_throttle,
        interceptors=interceptors,
        # On shutdown: stop polling, let activities hand back (bot/temporal/drain.py), then cancel the rest.
        graceful_shutdown_timeout=drain,
    )
