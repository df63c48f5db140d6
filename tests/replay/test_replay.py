"""The histories recorded on the landed workflows replay on this code (no server needed).

A change to the command order of BackfillJob, BackfillWindow or Purge breaks workflows already
running when it is deployed; replaying the recorded histories (tests/replay/histories, recorded by
`python -m tests.replay.record`) catches it here. Guard such a change with `workflow.patched()`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from bot.backfill.workflows import BackfillJob, BackfillWindow
from bot.purge.workflow import Purge
from bot.temporal.models import BackfillJobInput, PurgeInput, PurgeProgress, WindowInput, WindowResult, WindowState
from bot.temporal.worker import workflows

HISTORIES = Path(__file__).resolve().parent / "histories"
INDEX: list[dict[str, Any]] = json.loads((HISTORIES / "index.json").read_text())


def history(name: str) -> WorkflowHistory:
    entry = next(e for e in INDEX if e["file"] == f"{name}.json")
    return WorkflowHistory.from_json(entry["workflow_id"], (HISTORIES / entry["file"]).read_text())


def event_name(event: Any) -> str:
    """"EVENT_TYPE_TIMER_FIRED" -> "TimerFired"."""
    words = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_")
    return "".join(w.capitalize() for w in words)


@pytest.mark.parametrize("entry", INDEX, ids=lambda e: e["file"].removesuffix(".json"))
async def test_a_recorded_history_replays_on_this_code(entry: dict[str, Any]) -> None:
    replayed = await Replayer(workflows=workflows()).replay_workflow(history(entry["file"].removesuffix(".json")))
    assert replayed.replay_failure is None


@pytest.mark.parametrize("entry", INDEX, ids=lambda e: e["file"].removesuffix(".json"))
def test_a_recorded_history_still_shows_its_path(entry: dict[str, Any]) -> None:
    events = history(entry["file"].removesuffix(".json")).events
    names = {event_name(e) for e in events}
    assert names >= set(entry.get("events", [])), entry["shows"]
    signals = [e.workflow_execution_signaled_event_attributes.signal_name for e in events
               if e.HasField("workflow_execution_signaled_event_attributes")]
    assert all(s in signals for s in entry.get("signals", [])), (entry["shows"], signals)
    attempts = [e.activity_task_started_event_attributes.attempt for e in events
                if e.HasField("activity_task_started_event_attributes")]
    assert max(attempts, default=1) >= entry.get("attempt_at_least", 1)


def test_every_workflow_type_is_recorded_through_its_main_paths() -> None:
    by_type: dict[str, set[str]] = {}
    for e in INDEX:
        by_type.setdefault(e["workflow_type"], set()).add(e["file"])
    assert set(by_type) == {w.__temporal_workflow_definition.name for w in workflows()}  # type: ignore[attr-defined]
    paths = {re.sub(r"^(backfill_job|backfill_window|purge)_", "", f.removesuffix(".json"))
             for files in by_type.values() for f in files}
    assert paths >= {"worker_killed", "resumed_attempt", "window_failed", "retry_failed", "at_throttle_pause",
                     "done", "cancel", "cancelled", "drift_stop", "pause_cancel"}


# ---- the replay test fails when a workflow's command order changes -----------------------------


@workflow.defn(name="BackfillWindow", sandboxed=False)
class WindowWithATimerFirst(BackfillWindow):
    @workflow.run
    async def run(self, inp: WindowInput) -> WindowResult:
        await workflow.sleep(1)  # a new first command: a timer before the reindex activity
        return await super().run(inp)


@workflow.defn(name="BackfillWindow", sandboxed=False)
class WindowWithAPatchedTimerFirst(BackfillWindow):
    @workflow.run
    async def run(self, inp: WindowInput) -> WindowResult:
        if workflow.patched("timer-before-reindex"):  # the safe way: old histories take the old path
            await workflow.sleep(1)
        return await super().run(inp)


@workflow.defn(name="BackfillJob", sandboxed=False)
class JobReleasingLocksFirst(BackfillJob):
    @workflow.run
    async def run(self, inp: BackfillJobInput) -> list[WindowState]:
        await self._release(inp, "running", None)  # an activity before the first child workflow
        return await super().run(inp)


@workflow.defn(name="Purge", sandboxed=False)
class PurgeReleasingLocksFirst(Purge):
    @workflow.run
    async def run(self, inp: PurgeInput) -> PurgeProgress:
        await self._release(inp)  # release_locks scheduled before the first purge_chunk
        return await super().run(inp)


@pytest.mark.parametrize(("altered", "recorded"), [
    (WindowWithATimerFirst, "backfill_window_resumed_attempt"),
    (JobReleasingLocksFirst, "backfill_job_at_throttle_pause"),
    (PurgeReleasingLocksFirst, "purge_drift_stop"),
])
async def test_replay_fails_when_a_workflow_changes_its_command_order(altered: type, recorded: str) -> None:
    with pytest.raises(NondeterminismError, match="Nondeterminism"):
        await Replayer(workflows=[altered]).replay_workflow(history(recorded))


async def test_the_same_change_behind_workflow_patched_replays() -> None:
    for recorded in ("backfill_window_done", "backfill_window_resumed_attempt", "backfill_window_cancelled"):
        await Replayer(workflows=[WindowWithAPatchedTimerFirst]).replay_workflow(history(recorded))


def test_the_cluster_queue_histories_ran_windows_and_chunks_on_the_clusters_queue() -> None:
    """The job on the control queue ("record"); its windows' children and its chunks' activities on the
    cluster's ("record-west"); releasing the locks on the control queue."""
    job = history("backfill_job_cluster_queue").events
    children = {e.start_child_workflow_execution_initiated_event_attributes.task_queue.name for e in job
                if e.HasField("start_child_workflow_execution_initiated_event_attributes")}
    assert children == {"record-west"}
    purge = history("purge_cluster_queue").events
    scheduled = {(e.activity_task_scheduled_event_attributes.activity_type.name,
                  e.activity_task_scheduled_event_attributes.task_queue.name) for e in purge
                 if e.HasField("activity_task_scheduled_event_attributes")}
    assert scheduled == {("purge_chunk", "record-west"), ("release_locks", "record")}
    started = {e.workflow_execution_started_event_attributes.task_queue.name for e in (*job, *purge)
               if e.HasField("workflow_execution_started_event_attributes")}
    assert started == {"record"}
