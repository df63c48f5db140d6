"""Locks on (cluster, customer) pairs, held by the job that writes them, recorded in Postgres.

A second job that would touch a held pair is refused with the holder named. A lock whose job's
workflow has closed is stale and is taken over. An operator may force-release one (audited).
`is_running(workflow_id)` is given by the caller so this module knows nothing of Temporal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from bot.errors import ConflictError

IsRunning = Callable[[str], bool]


def acquire(pool: Any, job_id: str, workflow_id: str, pairs: Iterable[tuple[str, str]],
            is_running: IsRunning, *, young_s: float = 0.0) -> None:
    """Take every pair for `job_id` at once, or none (ConflictError naming the holders).

    A pair held by another job is refused while `is_running(holder's workflow id)`; otherwise the
    lock is stale and taken over (audited). A lock taken less than `young_s` seconds ago is never
    judged stale: its job may not have started its workflow yet.
    """
    wanted = sorted(set(pairs))
    with pool.connection() as conn, conn.transaction():
        # One starter at a time, so two starters cannot both judge a lock stale and both take it.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('shepherd.locks'))")
        held = conn.execute(
            "SELECT cluster, customer, job_id, workflow_id, acquired_at > now() - make_interval(secs => %s)"
            " FROM shepherd.locks WHERE (cluster, customer) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            (young_s, [c for c, _ in wanted], [n for _, n in wanted]),
        ).fetchall()
        conflicts = []
        for cluster, customer, holder, holder_wf, young in sorted(held):
            if holder == job_id:
                continue
            if young or (holder_wf and is_running(holder_wf)):
                conflicts.append(f"{customer} on {cluster} is held by job {holder}")
            else:
                conn.execute("DELETE FROM shepherd.locks WHERE cluster = %s AND customer = %s", (cluster, customer))
                _audit(conn, "system", "lock.stale_released", f"{cluster}/{customer}", {"holder": holder})
        if conflicts:
            raise ConflictError("refused: " + "; ".join(conflicts) + ". Wait for that job or cancel it.")
        for cluster, customer in wanted:
            conn.execute(
                "INSERT INTO shepherd.locks (cluster, customer, job_id, workflow_id) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (cluster, customer) DO UPDATE SET workflow_id = EXCLUDED.workflow_id"
                " WHERE shepherd.locks.job_id = EXCLUDED.job_id",
                (cluster, customer, job_id, workflow_id),
            )


def release(pool: Any, job_id: str) -> int:
    with pool.connection() as conn:
        cur = conn.execute("DELETE FROM shepherd.locks WHERE job_id = %s", (job_id,))
        return cur.rowcount


def force_release(pool: Any, cluster: str, customer: str, actor: str) -> str | None:
    """Release one lock whatever its holder; returns the holder's job id (None if it was free)."""
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            "DELETE FROM shepherd.locks WHERE cluster = %s AND customer = %s RETURNING job_id",
            (cluster, customer),
        ).fetchone()
        holder = row[0] if row else None
        _audit(conn, actor, "lock.force_release", f"{cluster}/{customer}", {"holder": holder})
        return holder


def held(pool: Any) -> list[tuple[str, str, str]]:
    """Every lock as (cluster, customer, holder job id)."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT cluster, customer, job_id FROM shepherd.locks ORDER BY 1, 2").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def held_by(pool: Any, job_id: str) -> list[tuple[str, str]]:
    """The (cluster, customer) pairs a job holds."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT cluster, customer FROM shepherd.locks WHERE job_id = %s ORDER BY 1, 2",
                            (job_id,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def _audit(conn: Any, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO shepherd.audit_log (actor, action, target, outcome, details) VALUES (%s, %s, %s, 'ok', %s)",
        (actor, action, target, json.dumps(details)),
    )
