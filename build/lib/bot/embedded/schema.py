"""DDL of the source tables (Postgres) and of one cluster's target tables (ClickHouse)."""

from __future__ import annotations

from typing import Any

from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table, pg_ident, quote_ident


def create_target_tables(ch: ClickHouse, scorecards: str = "scorecards", scores: str = "scores") -> None:
    """Create (if missing) the target tables in `ch.database`: MergeTree by month, sorted by customer and day."""
    ch.command(f"CREATE DATABASE IF NOT EXISTS {quote_ident(ch.database)}")
    ch.command(
        f"CREATE TABLE IF NOT EXISTS {ch_table(ch.database, scorecards)} ("
        "customer_id String, day Date, scorecard_id UInt64, conversation_id UInt64, "
        "scorecard_type UInt8, created_at DateTime('UTC')) "
        "ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (customer_id, day, scorecard_id)"
    )
    ch.command(
        f"CREATE TABLE IF NOT EXISTS {ch_table(ch.database, scores)} ("
        "customer_id String, day Date, scorecard_id UInt64, criterion_id UInt32, value Float32) "
        "ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (customer_id, day, scorecard_id, criterion_id)"
    )


def create_source_tables(conn: Any) -> None:
    """Create (if missing) the source tables in Postgres with their default names."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {pg_ident('customers')} (id text PRIMARY KEY, cluster text NOT NULL);"
        f"CREATE TABLE IF NOT EXISTS {pg_ident('conversations')} (id bigint PRIMARY KEY,"
        " customer_id text NOT NULL, started_at timestamptz NOT NULL);"
        f"CREATE TABLE IF NOT EXISTS {pg_ident('scorecards')} (id bigint PRIMARY KEY, customer_id text NOT NULL,"
        " conversation_id bigint NOT NULL, scorecard_type smallint NOT NULL, created_at timestamptz NOT NULL);"
        f"CREATE TABLE IF NOT EXISTS {pg_ident('scores')} (id bigint PRIMARY KEY, scorecard_id bigint NOT NULL,"
        " criterion_id int NOT NULL, value real NOT NULL);"
    )


_SOURCE_INDEXES = {
    # scorecard_type rides along so that planning counts a customer-day index-only
    "scorecards_customer_created_type": "scorecards (customer_id, created_at) INCLUDE (scorecard_type)",
    "scores_scorecard": "scores (scorecard_id)",
    "conversations_customer_started": "conversations (customer_id, started_at)",
}


def index_source_tables(conn: Any) -> None:
    """Indexes for the per-day counts and copies (built after a bulk load: faster). Only missing ones
    are built, so calling this on loaded data takes no lock."""
    for name, definition in _SOURCE_INDEXES.items():
        if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None:
            conn.execute(f"CREATE INDEX {name} ON {definition}")
    if conn.execute("SELECT to_regclass('scorecards_customer_created')").fetchone()[0] is not None:
        conn.execute("DROP INDEX scorecards_customer_created")  # the older index, without scorecard_type
