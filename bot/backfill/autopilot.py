"""`--parallel auto` outside the workflow: its policy from the configuration, and its reading, an activity
giving each running window's last heartbeat (done count and time) via describe() (the workflow cannot
call Temporal's API itself); async, on the worker's event loop, with the client the worker runs on.
The decisions are commands/autopilot.py, made in the BackfillJob workflow.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from bot.config import ShepherdConfig
from bot.temporal.models import AutopilotPolicy, HeartbeatSample, HeartbeatsInput


def autopilot_policy(config: ShepherdConfig) -> AutopilotPolicy:
    """The autopilot's policy from backfill.autopilot, bounded by backfill.max_parallel."""
    bf = config.backfill
    a = bf.autopilot
    return AutopilotPolicy(floor=a.floor, maximum=bf.max_parallel, start=min(max(a.start, a.floor), bf.max_parallel),
                           hold_s=a.hold_s, settle_s=a.settle_s, interval_s=a.interval_s, min_gain=a.min_gain,
                           collapse_ratio=a.collapse_ratio)


async def window_sample(client: Client, workflow_id: str, done_key: str) -> HeartbeatSample:
    """A window's last heartbeat: its done count and time (at None when it has not heartbeaten yet)."""
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return HeartbeatSample(workflow_id=workflow_id, done=0, at=None)
    for pending in desc.raw_description.pending_activities:
        if not pending.HasField("last_heartbeat_time") or not pending.heartbeat_details.payloads:
            continue
        decoded: list[Any] = await client.data_converter.decode(pending.heartbeat_details.payloads)
        details = decoded[-1] if decoded and isinstance(decoded[-1], dict) else {}
        if done_key in details:
            at = pending.last_heartbeat_time.seconds + pending.last_heartbeat_time.nanos / 1e9
            return HeartbeatSample(workflow_id=workflow_id, done=int(details[done_key]), at=at)
    return HeartbeatSample(workflow_id=workflow_id, done=0, at=None)


@activity.defn(name="read_window_heartbeats")
async def read_window_heartbeats(inp: HeartbeatsInput) -> list[HeartbeatSample]:
    client = activity.client()
    return list(await asyncio.gather(*(window_sample(client, w, inp.done_key) for w in inp.workflow_ids)))
