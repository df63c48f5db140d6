"""Which of a job's events are already posted (`shepherd.events_posted`): what makes every post once-only
across restarts. The monitor and the job-end work both record and check their keys here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EventLog:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def mark(self, job_id: str, key: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO shepherd.events_posted (job_id, event_key) VALUES (%s, %s)"
                         " ON CONFLICT DO NOTHING", (job_id, key))

    def unseen(self, job_id: str, keys: Sequence[str]) -> set[str]:
        """The keys among `keys` not yet marked for the job."""
        if not keys:
            return set()
        with self.pool.connection() as conn:
            seen = {r[0] for r in conn.execute("SELECT event_key FROM shepherd.events_posted WHERE job_id = %s"
                                               " AND event_key = ANY(%s)", (job_id, list(keys))).fetchall()}
        return set(keys) - seen

    def seen(self, job_id: str, key: str) -> bool:
        return not self.unseen(job_id, [key])

    def count(self, job_id: str, prefix: str) -> int:
        """How many of the job's marked keys start with `prefix`."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM shepherd.events_posted WHERE job_id = %s AND"
                               " starts_with(event_key, %s)", (job_id, prefix)).fetchone()
        return int(row[0]) if row else 0
