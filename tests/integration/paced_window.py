"""A window workflow that heartbeats at a rate the test sets: for the monitor's tests and bench.

Driven through the in-house window settings (workflow type, input mapping, heartbeat keys), like a
team's own backfill workflow. RATES[customer] is conversations per second; a customer in STALL stops
heartbeating at a third of its total and then sits until cancelled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

RATES: dict[str, float] = {}
STALL: set[str] = set()
DEFAULT_RATE = 100.0
STEP_S = 0.2
MAPPING = {"customer": "customer", "from": "start", "to": "end", "total": "conversations"}


@activity.defn(name="paced_reindex")
async def paced_reindex(params: dict[str, Any]) -> dict[str, Any]:
    total = int(params["total"]) or 1
    rate = RATES.get(params["customer"], DEFAULT_RATE)
    done = float((activity.info().heartbeat_details or [{}])[0].get("ReindexedConversations", 0)) \
        if activity.info().heartbeat_details else 0.0
    while done < total:
        if params["customer"] in STALL and done >= total / 3:
            await asyncio.sleep(3600)  # stuck, still running: only a cancel ends it
        await asyncio.sleep(STEP_S)
        done = min(done + rate * STEP_S, total)
        activity.heartbeat({"ReindexedConversations": int(done), "TotalConversationCount": total})
    return {"conversations": total}


@workflow.defn(name="PacedWindow")
class PacedWindow:
    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await workflow.execute_activity(
            paced_reindex, params, start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=5), retry_policy=RetryPolicy(maximum_attempts=2),
        )
        return result
