"""Postgres pool and migrations on the embedded server (a fresh database per test)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from bot.adapters.postgres import apply_migrations, make_pool, migration_files
from bot.errors import ConfigError, UpstreamError

pytestmark = pytest.mark.integration

TABLES = {
    "schema_migrations",
    "jobs",
    "job_results",
    "approvals",
    "audit_log",
    "progress_samples",
    "job_messages",
    "events_posted",
    "outbox",
    "locks",
    "linear_drafts",
    "slack_requests",
}


@pytest.fixture()
def pool(pg_dsn: str) -> Iterator[ConnectionPool]:
    p = make_pool(SecretStr(pg_dsn), min_size=1, max_size=4)
    yield p
    p.close()


def shepherd_tables(pool: ConnectionPool) -> set[str]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shepherd'"
        ).fetchall()
    return {r[0] for r in rows}


def versions(pool: ConnectionPool) -> list[str]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT version FROM shepherd.schema_migrations ORDER BY version").fetchall()
    return [r[0] for r in rows]


def test_migrations_apply_once_and_reapply_is_a_no_op(pool: ConnectionPool) -> None:
    assert [v for v, _ in migration_files()][0] == "001"
    shipped = [v for v, _ in migration_files()]
    assert shipped[:2] == ["001", "002"]
    assert apply_migrations(pool) == shipped
    assert shepherd_tables(pool) == TABLES
    assert apply_migrations(pool) == []
    assert versions(pool) == shipped


def test_two_processes_starting_together_apply_once(pg_dsn: str) -> None:
    pools = [make_pool(pg_dsn, min_size=1, max_size=1) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def start(p: ConnectionPool) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(apply_migrations(p))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(p,)) for p in pools]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        shipped = [v for v, _ in migration_files()]
        # Each migration is applied by exactly one of them (they may share the work, one file each).
        assert sorted(v for applied in results for v in applied) == shipped
        assert versions(pools[0]) == shipped
    finally:
        for p in pools:
            p.close()


APPROVAL = "INSERT INTO shepherd.approvals (job_id, approver, decision, plan_hash) VALUES "
LOCK = "INSERT INTO shepherd.locks (cluster, customer, job_id) VALUES "
OUTBOX = "INSERT INTO shepherd.outbox (dedupe_key, method, payload, state) VALUES "


def test_schema_constraints(pool: ConnectionPool) -> None:
    apply_migrations(pool)
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO shepherd.jobs (id, kind, state, requester, plan, params)"
            " VALUES ('b-7f3a2c', 'backfill', 'planned', 'U012ALICE', '{}', '{\"parallel\": 4}')"
        )
        conn.execute(APPROVAL + "('b-7f3a2c', 'U056BOB', 'approve', 'h1')")
        conn.execute(LOCK + "('voice-prod', 'hilton', 'b-7f3a2c')")
        conn.execute(OUTBOX + "('k1', 'chat.postMessage', '{}', 'pending')")
        conn.execute(
            "INSERT INTO shepherd.linear_drafts (ticket, job_ids, markdown) VALUES ('CONVI-6259', %s, '# x')",
            (["b-7f3a2c"],),
        )
    duplicates = [
        APPROVAL + "('b-7f3a2c', 'U056BOB', 'reject', 'h1')",
        LOCK + "('voice-prod', 'hilton', 'b-7f3a2c')",
        OUTBOX + "('k1', 'chat.update', '{}', 'pending')",
    ]
    for sql in duplicates:
        with pool.connection() as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(sql)
    checks = [
        "INSERT INTO shepherd.jobs (id, kind, state, requester) VALUES ('x-1', 'reindex', 'planned', 'U1')",
        OUTBOX + "('k2', 'm', '{}', 'lost')",
        APPROVAL + "('b-7f3a2c', 'U1', 'maybe', 'h')",
    ]
    for sql in checks:
        with pool.connection() as conn, pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(sql)
    with pool.connection() as conn:  # deleting a job takes its approvals and locks with it
        conn.execute("DELETE FROM shepherd.jobs WHERE id = 'b-7f3a2c'")
        assert conn.execute("SELECT count(*) FROM shepherd.approvals").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM shepherd.locks").fetchone() == (0,)


def test_custom_migrations_run_in_order_and_a_failing_one_leaves_no_trace(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    (tmp_path / "002_fill.sql").write_text(
        "INSERT INTO shepherd.t VALUES (2);\nINSERT INTO shepherd.t VALUES (3);\n"
    )
    (tmp_path / "001_make.sql").write_text(
        "CREATE SCHEMA IF NOT EXISTS shepherd;\nCREATE TABLE shepherd.t (n int);\n"
    )
    (tmp_path / "README.txt").write_text("not a migration")
    assert apply_migrations(pool, tmp_path) == ["001", "002"]
    (tmp_path / "003_broken.sql").write_text(
        "CREATE TABLE shepherd.u (n int);\nSELECT * FROM no_such_table;\n"
    )
    with pytest.raises(UpstreamError, match="migration 003_broken.sql failed: .*no_such_table"):
        apply_migrations(pool, tmp_path)
    assert versions(pool) == ["001", "002"]
    assert "u" not in shepherd_tables(pool)  # the failed file's transaction was rolled back
    (tmp_path / "003_broken.sql").write_text("CREATE TABLE shepherd.u (n int);\n")
    assert apply_migrations(pool, tmp_path) == ["003"]
    with pool.connection() as conn:
        assert conn.execute("SELECT sum(n) FROM shepherd.t").fetchone() == (5,)


def test_misnamed_migration_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    (tmp_path / "002_a.sql").write_text("SELECT 1;")
    (tmp_path / "002_b.sql").write_text("SELECT 1;")
    with pytest.raises(ConfigError) as info:
        migration_files(tmp_path)
    assert len(info.value.problems) == 2


def test_connection_errors_never_show_the_dsn() -> None:
    dsn = "postgresql://shepherd:s3cret-pw@127.0.0.1:1/bot"
    with pytest.raises(UpstreamError) as info:
        make_pool(SecretStr(dsn), timeout=2)
    text = str(info.value)
    assert "s3cret-pw" not in text and dsn not in text
    assert text.startswith("cannot connect to Postgres")
    with pytest.raises(UpstreamError) as info:
        make_pool("host=127.0.0.1 port=1 password=s3cret-pw nonsense", timeout=2)
    assert "s3cret-pw" not in str(info.value)
