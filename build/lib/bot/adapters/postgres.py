"""Postgres: the connection pool and the schema migrations.

Migrations are the plain SQL files `bot/migrations/NNN_description.sql`, applied in order, each
once, each in its own transaction, and recorded in `shepherd.schema_migrations` under the version
NNN. Every transaction first takes a transaction-scoped advisory lock, so processes that start
together apply each file exactly once; the others wait and then find it recorded.

The DSN is a secret (it may hold a password): it never reaches a log line or an error message.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from bot.errors import ConfigError, UpstreamError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_FILE = re.compile(r"(\d{3})_[A-Za-z0-9_]+\.sql")
LOCK_KEY = 0x5348_4550_4844  # "SHEPHD": the advisory lock that serialises migrations

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS shepherd;
CREATE TABLE IF NOT EXISTS shepherd.schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_PASSWORD = re.compile(r"(?i)\b(password)(\s*=\s*)('[^']*'|\S+)")


def _scrub(text: str, conninfo: str) -> str:
    """`text` with the DSN, its password and any URL credentials removed."""
    secrets = [conninfo]
    try:
        password = conninfo_to_dict(conninfo).get("password")
        if password:
            secrets.append(str(password))
    except Exception:  # an unparsable DSN: the regexes below still apply
        pass
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _PASSWORD.sub(r"\1\2***", _USERINFO.sub(r"\1***@", text))


def _reason(err: BaseException, conninfo: str) -> str:
    return _scrub(" ".join(str(err).split()) or type(err).__name__, conninfo)


def make_pool(
    dsn: str | SecretStr,
    min_size: int = 1,
    max_size: int = 8,
    *,
    timeout: float = 30.0,
    name: str = "shepherd",
) -> ConnectionPool:
    """An open psycopg pool with `min_size` connections ready.

    One connection is made first, directly, so that a bad DSN or an unreachable server fails at once
    with libpq's reason (scrubbed of the DSN) rather than after the pool's timeout.
    """
    conninfo = dsn.get_secret_value() if isinstance(dsn, SecretStr) else dsn
    try:
        psycopg.connect(conninfo, connect_timeout=max(1, int(timeout))).close()
    except Exception as err:
        raise UpstreamError(f"cannot connect to Postgres: {_reason(err, conninfo)}") from None
    pool: ConnectionPool = ConnectionPool(
        conninfo, min_size=min_size, max_size=max_size, open=False, name=name, timeout=timeout
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except Exception as err:
        pool.close()
        raise UpstreamError(f"cannot open the Postgres pool: {_reason(err, conninfo)}") from None
    return pool


def migration_files(directory: Path | None = None) -> list[tuple[str, Path]]:
    """(version, path) of every migration in `directory`, in order; a misnamed .sql file is an error."""
    directory = directory or MIGRATIONS_DIR
    found: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            problems.append(f"{path.name}: name it NNN_description.sql (NNN: three digits)")
        elif match.group(1) in found:
            problems.append(f"{path.name}: version {match.group(1)} is also {found[match.group(1)].name}")
        else:
            found[match.group(1)] = path
    if problems:
        raise ConfigError(str(directory), problems)
    return sorted(found.items())


def apply_migrations(pool: ConnectionPool, directory: Path | None = None) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the versions applied by this call."""
    migrations = migration_files(directory)
    applied: list[str] = []
    with pool.connection() as conn:
        with conn.transaction():
            _lock(conn)
            conn.execute(_BOOTSTRAP)
        for version, path in migrations:
            with conn.transaction():
                _lock(conn)
                row = conn.execute(
                    "SELECT 1 FROM shepherd.schema_migrations WHERE version = %s", (version,)
                ).fetchone()
                if row is not None:
                    continue
                try:
                    conn.execute(path.read_bytes())
                except psycopg.Error as err:
                    reason = " ".join(str(err).split())
                    raise UpstreamError(f"migration {path.name} failed: {reason}") from err
                conn.execute("INSERT INTO shepherd.schema_migrations (version) VALUES (%s)", (version,))
            log.info("applied migration %s", path.name)
            applied.append(version)
    return applied


def _lock(conn: Any) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))


def utc_midnight(d: date) -> datetime:
    """The first instant of day `d` in UTC: the bound every per-day query gives a timestamptz column."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
