"""A window workflow whose rate follows a contended resource: for the autopilot's tests and benchmark.

Every window shares one resource: with n windows copying at once the resource does n x BASE
conversations a second up to KNEE windows, and KNEE x BASE x DECAY^(n - KNEE) past it, shared
equally. So the summed rate rises to KNEE windows, then falls. Customers named `GROUP-...` share the
resource of their group only (the benchmark runs one job per group at once); others share RESOURCE.
Driven through the in-house window settings (workflow type, input mapping, heartbeat keys), like a
team's own backfill workflow.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

STEP_S = 0.1
MAPPING = {"customer": "customer", "from": "start", "to": "end", "total": "conversations"}


@dataclass
class Resource:
    base: float = 100.0  # conversations a second for one window alone
    knee: int = 3
    decay: float = 0.6
    running: int = 0

    def aggregate(self, n: int) -> float:
        return n * self.base if n <= self.knee else self.knee * self.base * self.decay ** (n - self.knee)

    def per_window(self) -> float:
        n = max(self.running, 1)
        return self.aggregate(n) / n


RESOURCE = Resource()
RESOURCES: dict[str, Resource] = {}  # by group (the customer name up to its first "-"), made from RESOURCE


def resource(customer: str) -> Resource:
    group = customer.split("-")[0]
    if group == "cust":
        return RESOURCE
    if group not in RESOURCES:
        RESOURCES[group] = Resource(base=RESOURCE.base, knee=RESOURCE.knee, decay=RESOURCE.decay)
    return RESOURCES[group]


@activity.defn(name="contended_reindex")
async def contended_reindex(params: dict[str, Any]) -> dict[str, Any]:
    total = int(params["total"]) or 1
    details = activity.info().heartbeat_details
    done = float(details[0].get("ReindexedConversations", 0)) if details else 0.0
    shared = resource(str(params["customer"]))
    shared.running += 1
    try:
        last = time.monotonic()
        while done < total:
            await asyncio.sleep(STEP_S)
            now = time.monotonic()  # by the clock, not the steps: a busy event loop does not slow the resource
            done, last = min(done + shared.per_window() * (now - last), total), now
            activity.heartbeat({"ReindexedConversations": int(done), "TotalConversationCount": total})
    finally:
        shared.running -= 1
    return {"conversations": total}


@workflow.defn(name="ContendedWindow")
class ContendedWindow:
    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await workflow.execute_activity(
            contended_reindex, params, start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=5), retry_policy=RetryPolicy(maximum_attempts=2),
        )
        return result
