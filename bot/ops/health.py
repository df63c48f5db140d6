"""Readiness checks: is Postgres answering, is Temporal answering, is this worker polling its task queue.

`Readiness` holds named checks, added as the process brings its parts up; until `ready()` is called
(everything started) /readyz answers 503 "starting". Each check raises to say what is wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

Check = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 3.0
POLL_FRESH_S = 90.0  # a long poll lasts up to about 70 s; a poller last seen longer ago is gone


class Readiness:
    def __init__(self, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.checks: dict[str, Check] = {}
        self.timeout_s = timeout_s
        self.started = False
        self.stopping = False

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def ready(self) -> None:
        self.started = True

    async def run(self) -> dict[str, str]:
        """Each check's name and "ok" or what is wrong."""
        names = list(self.checks)
        results = await asyncio.gather(*(self._one(self.checks[n]) for n in names))
        out = dict(zip(names, results, strict=True))
        if self.stopping:
            out["process"] = "stopping"
        elif not self.started:
            out["process"] = "starting"
        return out

    async def _one(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout_s)
        except TimeoutError:
            return f"no answer in {self.timeout_s:g} s"
        except Exception as err:
            return f"{type(err).__name__}: {str(err)[:200]}" if str(err) else type(err).__name__
        return "ok"


def postgres_check(pool: Any) -> Check:
    def query() -> None:
        with pool.connection(timeout=CHECK_TIMEOUT_S) as conn:
            conn.execute("SELECT 1").fetchone()

    async def check() -> None:
        await asyncio.to_thread(query)

    return check


def temporal_check(client: Any) -> Check:
    async def check() -> None:
        if not await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT_S)):
            raise ConnectionError(f"Temporal at {client.service_client.config.target_host} is not serving")

    return check


def task_queue_check(client: Any, task_queue: str) -> Check:
    """This worker (the client's identity) has polled the task queue for workflow tasks lately."""
    async def check() -> None:
        resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), timeout=timedelta(seconds=CHECK_TIMEOUT_S))
        now = time.time()
        mine = [p for p in resp.pollers if p.identity == client.identity]
        if not any(now - p.last_access_time.ToSeconds() < POLL_FRESH_S for p in mine):
            raise LookupError(f"this worker ({client.identity}) is not polling task queue {task_queue}")

    return check
