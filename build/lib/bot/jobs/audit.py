"""The audit log: everything said and done in Shepherd, who, what, when, the plan hash, the outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str | None
    plan_hash: str | None
    outcome: str | None
    details: dict[str, Any]


class AuditLog:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def record(self, actor: str, action: str, *, target: str | None = None, plan_hash: str | None = None,
               outcome: str = "ok", **details: Any) -> None:
        with self.pool.connection() as conn:
            # Not waiting for the WAL flush: only a crash of the Postgres host within its flush delay
            # (~0.2 s) could lose an entry, and every slash command writes one, so the fsync dominated.
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute(
                "INSERT INTO shepherd.audit_log (actor, action, target, plan_hash, outcome, details)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (actor, action, target, plan_hash, outcome[:2000], json.dumps(details, default=str)),
            )

    def entries(self, *, target: str | None = None, actor: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """Newest last; filtered by target (a job id) or actor (a Slack user id) when given."""
        clauses, args = [], []
        if target is not None:
            clauses.append("target = %s")
            args.append(target)
        if actor is not None:
            clauses.append("actor = %s")
            args.append(actor)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT at, actor, action, target, plan_hash, outcome, details FROM shepherd.audit_log {where}"
                " ORDER BY id DESC LIMIT %s", (*args, limit)).fetchall()
        return [AuditEntry(*r) for r in reversed(rows)]
