"""The client API of purge jobs: start (after approval), progress, pause, resume, cancel."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from bot.backfill.service import JobService
from bot.errors import UpstreamError, UserInputError
from bot.jobs import locks
from bot.jobs.ids import job_workflow_id
from bot.temporal import search_attributes
from bot.temporal.models import ChunkSpec, PurgeInput, PurgeProgress
from commands.models import PurgePlan


def check_purge_plan(plan: PurgePlan, known_clusters: set[str]) -> None:
    if not any(cp.chunks for cp in plan.clusters):
        raise UserInputError("the plan has no chunks: nothing to delete")
    for cp in plan.clusters:
        if cp.cluster not in known_clusters:
            raise UserInputError(f"the plan names unknown cluster {cp.cluster}")


def chunk_specs(plan: PurgePlan) -> dict[str, list[ChunkSpec]]:
    """Per cluster, its chunks as the workflow runs them (index = position in the cluster's chain)."""
    return {
        cp.cluster: [ChunkSpec(index=i, customer=c.customer, table=c.table, start=c.start.isoformat(),
                               end=c.end.isoformat(), rows=c.rows, over_cap=c.over_cap, partition=c.partition,
                               key=list(c.key), key_types=list(c.key_types), lo=list(c.lo) if c.lo else None,
                               hi=list(c.hi) if c.hi else None)
                     for i, c in enumerate(cp.chunks)]
        for cp in plan.clusters if cp.chunks
    }


class PurgeJobService(JobService):
    async def start_purge(self, plan: PurgePlan, job_id: str, requester: str, channel: str | None = None) -> str:
        check_purge_plan(plan, {c.name for c in self.config.clusters})
        policy = self.config.purge
        specs = chunk_specs(plan)
        inp = PurgeInput(
            job_id=job_id, plan_hash=plan.plan_hash, types=list(plan.types), clusters={},
            packed=json.dumps({c: [asdict(s) for s in chunks] for c, chunks in specs.items()}, separators=(",", ":")),
            strategy=policy.strategy, max_unfinished_mutations=policy.max_unfinished_mutations,
            drift_tolerance=policy.drift_tolerance, heartbeat_timeout_s=self.heartbeat_timeout_s,
            max_attempts=self.config.backfill.max_attempts,
            continue_after_events=self.config.backfill.continue_after_events,
        )
        inp.task_queues = {name: queue for name in specs if (queue := self.config.cluster_queue(name))}
        workflow_id = job_workflow_id("purge", job_id)
        await asyncio.to_thread(self._record, job_id, "purge", requester, channel, plan, workflow_id)
        pairs = {(cp.cluster, c.customer) for cp in plan.clusters for c in cp.chunks}
        await self._lock(job_id, workflow_id, pairs)
        attributes = search_attributes.job_attributes(
            job_id, "purge", (c.customer for cp in plan.clusters for c in cp.chunks),
            (cp.cluster for cp in plan.clusters if cp.chunks), requester)
        try:
            await self.start_tagged("Purge", inp, workflow_id, attributes, WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        except RPCError as err:
            await asyncio.to_thread(locks.release, self.pool, job_id)
            await asyncio.to_thread(self._set_state, job_id, "did_not_start", f"Temporal refused: {err.message}")
            raise UpstreamError(f"Temporal refused to start job {job_id}: {err.message}") from None
        await asyncio.to_thread(self._set_state, job_id, "running", None)
        return job_id

    async def purge_progress(self, job_id: str) -> PurgeProgress:
        try:
            progress: PurgeProgress = await self._purge(job_id).query("progress", result_type=PurgeProgress)
        except RPCError as err:
            raise UserInputError(f"no purge job {job_id}") from err
        return progress

    async def purge_pause(self, job_id: str) -> None:
        await self._purge(job_id).signal("pause")

    async def purge_resume(self, job_id: str) -> None:
        await self._purge(job_id).signal("resume")

    async def purge_cancel(self, job_id: str) -> None:
        await self._purge(job_id).cancel()

    async def purge_result(self, job_id: str) -> Any:
        return await self._purge(job_id).result()

    def _purge(self, job_id: str) -> Any:
        return self.client.get_workflow_handle(job_workflow_id("purge", job_id))
