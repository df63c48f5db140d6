"""Per-customer locks in Postgres: refusal naming the holder, stale takeover, audited force release."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.postgres import apply_migrations, make_pool
from bot.errors import ConflictError
from bot.jobs import locks


@pytest.fixture()
def pool(pg_dsn: str) -> Any:
    p = make_pool(pg_dsn)
    apply_migrations(p)
    with p.connection() as conn:
        for job in ("b-aaaaaa", "b-bbbbbb", "p-cccccc"):
            conn.execute("INSERT INTO shepherd.jobs (id, kind, state, requester) VALUES (%s, %s, 'running', 'U')",
                         (job, "purge" if job.startswith("p") else "backfill"))
    yield p
    p.close()


def test_refused_while_the_holder_runs_then_taken_over_when_stale(pool: Any) -> None:
    locks.acquire(pool, "b-aaaaaa", "wf-a", [("chat-prod", "hilton"), ("chat-prod", "marriott")], lambda wf: True)
    with pytest.raises(ConflictError, match="hilton on chat-prod is held by job b-aaaaaa"):
        locks.acquire(pool, "p-cccccc", "wf-c", [("chat-prod", "hilton")], lambda wf: True)
    assert ("chat-prod", "hilton", "b-aaaaaa") in locks.held(pool)  # a refusal takes nothing
    locks.acquire(pool, "p-cccccc", "wf-c", [("chat-prod", "hilton")], lambda wf: False)  # holder closed: stale
    assert ("chat-prod", "hilton", "p-cccccc") in locks.held(pool)
    with pool.connection() as conn:
        audit = conn.execute("SELECT actor, action FROM shepherd.audit_log").fetchall()
    assert ("system", "lock.stale_released") in audit


def test_same_job_may_take_its_own_locks_again_and_release_frees_all(pool: Any) -> None:
    locks.acquire(pool, "b-aaaaaa", "wf-a", [("chat-prod", "hilton")], lambda wf: True)
    locks.acquire(pool, "b-aaaaaa", "wf-a", [("chat-prod", "hilton")], lambda wf: True)
    assert locks.release(pool, "b-aaaaaa") == 1
    assert locks.held(pool) == []


def test_force_release_is_audited(pool: Any) -> None:
    locks.acquire(pool, "b-bbbbbb", "wf-b", [("voice-prod", "spirit")], lambda wf: True)
    assert locks.force_release(pool, "voice-prod", "spirit", "U_ALICE") == "b-bbbbbb"
    assert locks.held(pool) == []
    with pool.connection() as conn:
        row = conn.execute("SELECT actor, action, target, details->>'holder' FROM shepherd.audit_log"
                           " WHERE action = 'lock.force_release'").fetchone()
    assert row == ("U_ALICE", "lock.force_release", "voice-prod/spirit", "b-bbbbbb")
