"""Rows of shepherd.jobs and shepherd.job_messages as the Slack layer sees them.

A job's row exists from the moment its plan is posted (state `planned`, or `awaiting_approval`
for a purge); a button claims it with one conditional UPDATE, so a button acts once however
often it is clicked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from bot.errors import UserInputError

DM_COPY = "dm:"  # job_messages purpose prefix of a request's direct-message copies
OPEN_STATES = ("planned", "awaiting_approval", "approved", "starting", "waiting", "running", "paused", "cancelling")


@dataclass(frozen=True)
class JobRow:
    id: str
    kind: str
    state: str
    requester: str
    channel: str | None
    plan_hash: str | None
    plan: dict[str, Any] | None
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


_COLUMNS = "id, kind, state, requester, channel, plan_hash, plan, params, created_at, started_at, finished_at, error"


def _row(r: Any) -> JobRow:
    plan = r[6] if r[6] is None or isinstance(r[6], dict) else json.loads(r[6])
    params = r[7] if isinstance(r[7], dict) else json.loads(r[7] or "{}")
    return JobRow(r[0], r[1], r[2], r[3], r[4], r[5], plan, params, *r[8:])


class JobRecords:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def create(self, job_id: str, kind: str, state: str, requester: str, channel: str | None, plan: BaseModel,
               params: dict[str, Any]) -> None:
        plan_hash = getattr(plan, "plan_hash", None)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO shepherd.jobs (id, kind, state, requester, channel, plan_hash, plan, params)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (job_id, kind, state, requester, channel, plan_hash, plan.model_dump_json(),
                 json.dumps(params, default=str)),
            )

    def get(self, job_id: str) -> JobRow:
        with self.pool.connection() as conn:
            r = conn.execute(f"SELECT {_COLUMNS} FROM shepherd.jobs WHERE id = %s", (job_id,)).fetchone()
        if r is None:
            raise UserInputError(f"no job {job_id} (see /shepherd jobs)")
        return _row(r)

    def claim(self, job_id: str, from_states: tuple[str, ...], to_state: str) -> JobRow | None:
        """Move the job from one of `from_states` to `to_state`; None if it was not in one of them."""
        with self.pool.connection() as conn:
            r = conn.execute(
                # A job claimed to start is dated from now: the reconciler gives a start in flight its grace.
                f"UPDATE shepherd.jobs SET state = %s, started_at = CASE WHEN %s::text = 'starting' THEN now()"
                f" ELSE started_at END WHERE id = %s AND state = ANY(%s) RETURNING {_COLUMNS}",
                (to_state, to_state, job_id, list(from_states))).fetchone()
        return _row(r) if r else None

    def set_state(self, job_id: str, state: str, error: str | None = None, *, finished: bool = False) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE shepherd.jobs SET state = %s, error = COALESCE(%s, error),"
                " finished_at = CASE WHEN %s THEN now() ELSE finished_at END WHERE id = %s",
                (state, error, finished, job_id))

    def recent(self, limit: int = 15, channel: str | None = None) -> list[JobRow]:
        """Open jobs first (newest first), then the most recent finished ones."""
        where, args = "state <> 'dismissed'", []
        if channel is not None:
            where, args = where + " AND channel = %s", [channel]
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM shepherd.jobs WHERE {where}"
                " ORDER BY (state = ANY(%s)) DESC, created_at DESC LIMIT %s",
                (*args, list(OPEN_STATES), limit)).fetchall()
        return [_row(r) for r in rows]

    # ---- the Slack messages a job owns --------------------------------------------------

    def set_message(self, job_id: str, purpose: str, channel: str, ts: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO shepherd.job_messages (job_id, purpose, channel, ts) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (job_id, purpose) DO UPDATE SET channel = EXCLUDED.channel, ts = EXCLUDED.ts",
                (job_id, purpose, channel, ts))

    def claim_message(self, job_id: str, purpose: str, channel: str) -> bool:
        """Reserve the job's one message for `purpose` (its ts set once posted): False when another has it."""
        with self.pool.connection() as conn:
            return conn.execute(
                "INSERT INTO shepherd.job_messages (job_id, purpose, channel, ts) VALUES (%s, %s, %s, '')"
                " ON CONFLICT (job_id, purpose) DO NOTHING RETURNING job_id", (job_id, purpose, channel)
            ).fetchone() is not None

    def message(self, job_id: str, purpose: str) -> tuple[str, str] | None:
        with self.pool.connection() as conn:
            r = conn.execute("SELECT channel, ts FROM shepherd.job_messages WHERE job_id = %s AND purpose = %s",
                             (job_id, purpose)).fetchone()
        return (r[0], r[1]) if r else None


    def set_copy(self, job_id: str, user: str, channel: str, ts: str) -> None:
        """A copy of the job's request sent to `user` by direct message (purpose `dm:<user>`)."""
        self.set_message(job_id, f"{DM_COPY}{user}", channel, ts)

    def copies(self, job_id: str) -> dict[str, tuple[str, str]]:
        """user -> (channel, ts) of every direct-message copy of the job's request."""
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT purpose, channel, ts FROM shepherd.job_messages WHERE job_id = %s"
                                " AND purpose LIKE %s ORDER BY created_at", (job_id, f"{DM_COPY}%")).fetchall()
        return {r[0].removeprefix(DM_COPY): (r[1], r[2]) for r in rows}

    # ---- what one person sees (the Home tab) ----------------------------------------------

    def awaiting_approval(self, limit: int = 20) -> list[JobRow]:
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM shepherd.jobs WHERE state = 'awaiting_approval'"
                                " ORDER BY created_at LIMIT %s", (limit,)).fetchall()
        return [_row(r) for r in rows]

    def of_requester(self, user: str, *, open_jobs: bool, limit: int = 10) -> list[JobRow]:
        """The person's open jobs (oldest first), or their finished ones (latest first)."""
        where = "state = ANY(%s)" if open_jobs else "NOT (state = ANY(%s)) AND state <> 'dismissed'"
        order = "created_at" if open_jobs else "COALESCE(finished_at, created_at) DESC"
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM shepherd.jobs WHERE requester = %s AND {where}"
                                f" ORDER BY {order} LIMIT %s", (user, list(OPEN_STATES), limit)).fetchall()
        return [_row(r) for r in rows]
