"""A stand-in for a team's in-house backfill workflow: another name, task queue, input and keys."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

RUNS: Counter[str] = Counter()  # window start -> runs (the activity runs in the test process)
FAIL_ONCE: set[str] = set()  # window starts that fail on their first run
STEPS = 12


@activity.defn(name="inhouse_reindex")
async def inhouse_reindex(params: dict[str, Any]) -> dict[str, Any]:
    start = params["from"]
    RUNS[start] += 1
    if start in FAIL_ONCE:
        FAIL_ONCE.discard(start)
        raise ApplicationError(f"source replica lagging for {params['customerName']} {start}", non_retryable=True)
    for i in range(STEPS):
        activity.heartbeat({"Done": i + 1, "Total": STEPS})
        await asyncio.sleep(0.15)
    return {"conversations": STEPS, "region": "in-house"}


@workflow.defn(name="InHouseBackfill")
class InHouseBackfill:
    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await workflow.execute_activity(
            inhouse_reindex, params, start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=1), retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return result
