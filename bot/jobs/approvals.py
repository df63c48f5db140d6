"""Who may approve a destructive job, and recording their decisions.

Rules: an approver is listed in `access.approvers` (a Slack user id, or a user group given as
`@handle` or its `S...` id) and is not the requester; `approvals_required` distinct approvals
start the job; one rejection ends the request; a request expires `approval_ttl_minutes` after it
was made; a decision names the plan hash it was shown and counts only for that hash. The job row
is locked while a decision is taken, so concurrent clicks act once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.config import Access
from bot.errors import ConflictError, NotAuthorized, UserInputError

Decision = Literal["approve", "reject"]


@dataclass(frozen=True)
class DecisionOutcome:
    state: Literal["recorded", "approved", "rejected"]  # approved: enough approvals, start the job now
    approvals: tuple[tuple[str, datetime], ...]  # (user, when) of every approval so far
    needed: int
    decided_at: datetime


def is_listed(user: str, listed: Collection[str], groups: Collection[str]) -> bool:
    """`user` is listed itself, or is in one of the listed groups (`groups`: the ids/handles they belong to)."""
    return user in listed or any(g in listed for g in groups)


def group_entries(listed: Collection[str]) -> list[str]:
    """The entries of an access list that name user groups rather than users."""
    return [e for e in listed if e.startswith("@") or (e.startswith("S") and e[1:].isalnum() and e.isupper())]


def check_approver(user: str, requester: str, access: Access, groups: Collection[str]) -> None:
    if not is_listed(user, access.approvers, groups):
        raise NotAuthorized(f"<@{user}> is not an approver (access.approvers in shepherd.yml); nothing was changed")
    if user == requester:
        raise NotAuthorized("you requested this purge: someone else among the approvers must approve it")


class Approvals:
    def __init__(self, pool: Any, access: Access) -> None:
        self.pool = pool
        self.access = access

    def expires_at(self, requested_at: datetime) -> datetime:
        return requested_at + timedelta(minutes=self.access.approval_ttl_minutes)

    def decide(self, job_id: str, user: str, decision: Decision, shown_hash: str, now: datetime,
               groups: Collection[str] = ()) -> DecisionOutcome:
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT state, requester, plan_hash, created_at FROM shepherd.jobs WHERE id = %s AND kind = 'purge'"
                " FOR UPDATE", (job_id,)).fetchone()
            if row is None:
                raise UserInputError(f"no purge request {job_id}")
            state, requester, plan_hash, requested_at = row
            if state != "awaiting_approval":
                raise ConflictError(f"purge {job_id} is already decided (it is {state.replace('_', ' ')} now): "
                                    "this button no longer acts; nothing was changed")
            if shown_hash != plan_hash:
                raise ConflictError(f"this approval was for plan {shown_hash}, but purge {job_id} now has plan "
                                    f"{plan_hash}; nothing was changed")
            if now > self.expires_at(requested_at):
                # Recorded before the refusal is raised: raising inside the transaction would undo it.
                conn.execute("UPDATE shepherd.jobs SET state = 'expired', finished_at = now() WHERE id = %s",
                             (job_id,))
                expired = self.expires_at(requested_at)
            else:
                expired = None
                outcome = self._record(conn, job_id, user, decision, requester, plan_hash, now, groups)
        if expired is not None:
            raise ConflictError(
                f"the approval request for purge {job_id} expired at {expired:%H:%M} UTC "
                f"({self.access.approval_ttl_minutes} minutes after it was made); nothing was deleted. "
                "Run /purge again for a fresh plan.")
        return outcome

    def _record(self, conn: Any, job_id: str, user: str, decision: Decision, requester: str, plan_hash: str,
                now: datetime, groups: Collection[str]) -> DecisionOutcome:
        check_approver(user, requester, self.access, groups)
        inserted = conn.execute(
            "INSERT INTO shepherd.approvals (job_id, approver, decision, plan_hash, created_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (job_id, approver) DO NOTHING",
            (job_id, user, decision, plan_hash, now)).rowcount
        if not inserted:
            raise ConflictError(f"you have already decided on purge {job_id}; it needs another approver")
        approvals = tuple((str(u), at) for u, at in conn.execute(
            "SELECT approver, created_at FROM shepherd.approvals WHERE job_id = %s AND decision = 'approve'"
            " AND plan_hash = %s ORDER BY created_at", (job_id, plan_hash)).fetchall())
        needed = self.access.approvals_required
        state: Literal["recorded", "approved", "rejected"] = "recorded"
        if decision == "reject":
            state = "rejected"
            conn.execute("UPDATE shepherd.jobs SET state = 'rejected', finished_at = now() WHERE id = %s", (job_id,))
        elif len(approvals) >= needed:
            state = "approved"
            conn.execute("UPDATE shepherd.jobs SET state = 'approved' WHERE id = %s", (job_id,))
        return DecisionOutcome(state, approvals, needed, now)

    def expire_due(self, now: datetime) -> list[str]:
        """Mark every request older than its time to live expired; the ids of those that just expired."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "UPDATE shepherd.jobs SET state = 'expired', finished_at = now() WHERE kind = 'purge'"
                " AND state = 'awaiting_approval' AND created_at < %s RETURNING id",
                (now - timedelta(minutes=self.access.approval_ttl_minutes),)).fetchall()
        return [str(r[0]) for r in rows]

    def decided(self, user: str, job_ids: Collection[str]) -> set[str]:
        """The jobs among `job_ids` on which `user` has decided already."""
        if not job_ids:
            return set()
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT job_id FROM shepherd.approvals WHERE approver = %s AND job_id = ANY(%s)",
                                (user, list(job_ids))).fetchall()
        return {str(r[0]) for r in rows}
