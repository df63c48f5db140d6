"""The Temporal worker: Shepherd's workflows and activities on one task queue.

Activities are synchronous (psycopg pools, ClickHouse clients) and run in a thread pool. Run more
workers on the same task queue to share the load.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bot.temporal.backfill_activities import BackfillActivities
from bot.temporal.backfill_workflows import BackfillJob, BackfillWindow
from bot.temporal.deps import ActivityDeps


def workflows() -> list[type]:
    found: list[type] = [BackfillJob, BackfillWindow]
    try:
        from bot.temporal.purge_workflow import Purge
    except ImportError:  # the purge engine is optional in this build
        return found
    return [*found, Purge]


def activities(deps: ActivityDeps) -> list[Any]:
    backfill = BackfillActivities(deps)
    found: list[Any] = [backfill.reindex_window, backfill.release_locks]
    try:
        from bot.temporal.purge_activities import PurgeActivities
    except ImportError:
        return found
    purge = PurgeActivities(deps)
    return [*found, *purge.all()]


def build_worker(client: Client, task_queue: str, deps: ActivityDeps, *, max_activities: int = 16,
                 extra_workflows: Sequence[type] = (), extra_activities: Sequence[Any] = ()) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*workflows(), *extra_workflows],
        activities=[*activities(deps), *extra_activities],
        activity_executor=ThreadPoolExecutor(max_workers=max_activities, thread_name_prefix="activity"),
        max_concurrent_activities=max_activities,
    )
