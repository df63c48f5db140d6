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
from temporalio.worker import Worker

from bot.backfill.activities import BackfillActivities
from bot.backfill.workflows import BackfillJob, BackfillWindow
from bot.purge.activities import PurgeActivities
from bot.purge.workflow import Purge
from bot.temporal.deps import ActivityDeps


def workflows() -> list[type]:
    return [BackfillJob, BackfillWindow, Purge]


def activities(deps: ActivityDeps) -> list[Any]:
    backfill = BackfillActivities(deps)
    return [backfill.reindex_window, backfill.release_locks, *PurgeActivities(deps).all()]


def build_worker(client: Client, task_queue: str, deps: ActivityDeps, *, max_activities: int = 16,
                 extra_workflows: Sequence[type] = (), extra_activities: Sequence[Any] = (),
                 heartbeat_throttle: timedelta = timedelta(seconds=60)) -> Worker:
    """A worker running every Shepherd workflow and activity (plus `extra_*`, for tests) on `task_queue`."""
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
    )
