"""The repair plan of a stored deep verification (`/verify repair JOB`): the job's differing pairs verified
again, the plan made only when the same differences are found (the report's hash), nothing run.

Every refusal is a UserInputError whose text says why and what to do instead.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.errors import UserInputError
from bot.jobs.records import JobRow
from bot.verify.deep import DeepVerifier
from commands.repair import Pair, RepairPlan, differing_pairs, findings_hash, plan_repair


def stored_pairs(job: JobRow) -> tuple[tuple[Pair, ...], str, tuple[int, ...]]:
    """The differing (customer, day) pairs a stored verification found, its findings' hash and its appeal
    types; refused when it is no deep verification, or found nothing to repair."""
    if job.kind != "verify":
        raise UserInputError(f"{job.id} is a {job.kind} job, not a verification; /verify repair takes the "
                             "v-... job of a /verify ... --deep report")
    doc: dict[str, Any] = job.plan or {}
    deep = doc.get("deep")
    if not isinstance(deep, dict) or "repair_hash" not in deep:
        raise UserInputError(f"{job.id} compared counts only; a repair needs every differing row: run "
                             "/verify ... --deep, then /verify repair on its job")
    pairs = tuple(sorted((d["customer"], date.fromisoformat(d["day"])) for d in deep["days_differing"]))
    if doc.get("ok") or not pairs:
        raise UserInputError(f"{job.id} found no difference: nothing to repair")
    return pairs, str(deep["repair_hash"]), tuple(int(t) for t in doc.get("types") or ())


def plan_for_job(verifier: DeepVerifier, job: JobRow) -> RepairPlan:
    """Verify the job's differing pairs again (their customers over the span of their days) and plan their
    repair, or refuse when what differs now is not what the job found."""
    pairs, stored, types = stored_pairs(job)
    customers = tuple(sorted({c for c, _ in pairs}))
    fresh = verifier.verify(customers, None, min(d for _, d in pairs), max(d for _, d in pairs), types or None)
    if set(differing_pairs(fresh)) != set(pairs) or findings_hash(fresh, pairs) != stored:
        raise UserInputError(f"the data changed since {job.id}: what differs now is not what it found (report "
                             f"{stored}), so nothing was planned; verify again with --deep and repair that report")
    clusters = {r.name: r.cluster for r in verifier.service.registry.resolve(customers)}
    return plan_repair(fresh, clusters, verifier.config.windows, verifier.config.throughput)
