"""The finished windows the estimates learn from: each backfill window that ended done, as kept in
shepherd.job_results (a job's last progress), with how many conversations it copied and how long it took."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands.estimates import PastWindow

RECENT = 50  # per customer: the latest windows only (a cluster changes)


def past_windows(pool: Any, customers: Sequence[str]) -> list[PastWindow]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT customer, done, seconds FROM (SELECT w->>'customer' AS customer, (w->>'done')::bigint AS done,"
            " extract(epoch FROM (w->>'finished')::timestamptz - (w->>'started')::timestamptz) AS seconds,"
            " row_number() OVER (PARTITION BY w->>'customer' ORDER BY r.taken_at DESC) AS n"
            " FROM shepherd.job_results r JOIN shepherd.jobs j ON j.id = r.job_id,"
            " jsonb_array_elements(r.progress->'windows') AS w"
            " WHERE j.kind = 'backfill' AND w->>'state' = 'done' AND w->>'customer' = ANY(%s)"
            " AND w->>'started' IS NOT NULL AND w->>'finished' IS NOT NULL) recent WHERE n <= %s",
            (list(customers), RECENT)).fetchall()
    return [PastWindow(customer=str(c), conversations=int(d), seconds=float(s)) for c, d, s in rows]
