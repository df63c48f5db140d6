"""Which task queues a running job waits on have had no worker polling them, and for how long.

Temporal's DescribeTaskQueue lists each queue's pollers with the time each last polled. A long poll
lasts up to about 70 s, so a queue counts as unpolled once its newest poll is older than
POLL_FRESH_S (or it has no poller at all); it is reported once it has been so for `after_s`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from bot.config import ShepherdConfig
from bot.ops.health import POLL_FRESH_S
from bot.temporal.models import BackfillProgress, PurgeProgress
from commands.progress import Event

log = logging.getLogger(__name__)
WAITING = ("pending", "running")
ASK_EVERY_S = 2.0


def backfill_queues(p: BackfillProgress, config: ShepherdConfig, control: str) -> set[str]:
    """The queues a running backfill needs polled: its own, and those of its unfinished windows."""
    if p.state != "running":
        return set()
    own = config.backfill.window_task_queue
    return {control} | {own or config.cluster_queue(w.cluster) or control for w in p.windows if w.state in WAITING}


def purge_queues(p: PurgeProgress, config: ShepherdConfig, control: str) -> set[str]:
    if p.state != "running":
        return set()
    return {control} | {config.cluster_queue(name) or control for name, chunks in p.clusters.items()
                        if any(c.state in WAITING for c in chunks)}


class QueueWatch:
    def __init__(self, client: Any, after_s: float, clock: Callable[[], float] = time.time) -> None:
        self.client, self.after_s, self.clock = client, after_s, clock
        self._unpolled_since: dict[str, float] = {}  # queue -> when this monitor first found it unpolled
        self._asked: dict[str, tuple[float, float | None]] = {}  # queue -> (asked at, last poll): one ask a tick

    async def last_poll(self, queue: str) -> float | None:
        resp = await self.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=self.client.namespace, task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), timeout=timedelta(seconds=5))
        return max((float(p.last_access_time.ToSeconds()) for p in resp.pollers), default=None)

    async def unpolled(self, queues: Iterable[str]) -> dict[str, float]:
        """{queue: seconds without a worker} for each queue unpolled for at least `after_s`."""
        found: dict[str, float] = {}
        now = self.clock()
        for queue in sorted(set(queues)):
            try:
                asked_at, last = self._asked.get(queue, (float("-inf"), None))
                if now - asked_at > ASK_EVERY_S:  # many jobs waiting on one queue: Temporal is asked once
                    last = await self.last_poll(queue)
                    self._asked[queue] = (now, last)
            except Exception as err:  # Temporal unreachable: the job's own reads fail and say so
                log.info("monitor: cannot describe task queue %s: %s", queue, err)
                continue
            if last is not None and now - last < POLL_FRESH_S:
                self._unpolled_since.pop(queue, None)
                continue
            since = self._unpolled_since.setdefault(queue, last if last is not None else now)
            if now - since >= self.after_s:
                found[queue] = now - since
        return found

    async def events(self, queues: Iterable[str], run: int) -> list[Event]:
        """One event per unpolled queue per run of the job (the event log posts each key once)."""
        return [Event(f"no-worker:{queue}:{run}", no_worker_text(queue, seconds), "no_worker")
                for queue, seconds in (await self.unpolled(queues)).items()]


def no_worker_text(queue: str, seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (f":warning: no worker on {queue} for {minutes} min: the job waits until one polls it "
            f"(`shepherd worker --queues {queue}`)")
