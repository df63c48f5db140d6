"""A BackfillJob as a worker deployed before `progress_table` answers: only the `progress` query."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bot.temporal.models import BackfillProgress, WindowState


@workflow.defn(name="BackfillJob")
class OldBackfillJob:
    def __init__(self) -> None:
        self.job_id = ""

    @workflow.query
    def progress(self) -> BackfillProgress:
        return BackfillProgress(job_id=self.job_id, state="running", parallel=1, paused=False, start_at=None,
                                windows=[WindowState(key="hilton:2026-01-03:2026-01-07", customer="hilton",
                                                     cluster="chat-prod", start="2026-01-03", end="2026-01-07")])

    @workflow.run
    async def run(self, inp: dict[str, Any]) -> None:
        self.job_id = inp["job_id"]
        await workflow.wait_condition(lambda: False)
