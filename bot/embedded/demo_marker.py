"""The demo's load markers: what was loaded, written only once a load is complete.

A load writes, in this order, after every row is in place: one ClickHouse marker row per cluster
(database `shepherd_demo`, table `marker`), then the Postgres marker (`public.demo_meta`), both
with the spec and the same checksum. Loaded means: the Postgres marker exists and every cluster's
ClickHouse marker carries its checksum. Nothing here counts rows to decide: jobs delete and rewrite
rows (that is their point), so a count says nothing about whether the load finished.

The checksum is a SHA-256 of the spec and of the row counts the load wrote (per Postgres table and
per cluster): it ties the two markers to one load, so ClickHouse data restored from another load,
or lost, is noticed instead of silently reloaded over.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table, quote_ident
from bot.errors import UserInputError

MARKER_DATABASE = "shepherd_demo"
log = logging.getLogger(__name__)


class DemoSpecChanged(UserInputError):
    """The data directory holds a demo loaded with another spec; only an explicit reset replaces it."""


class DemoDataMismatch(UserInputError):
    """Postgres says the demo is loaded, ClickHouse's marker disagrees: something was lost or swapped."""


RESET_HINT = "`shepherd dev --reset` (or `shepherd serve --reset`) deletes this data, jobs included, and loads afresh"


def describe_spec(key: str) -> str:
    doc = json.loads(key)
    return f"--scale {doc.get('scale')} --seed {doc.get('seed')}"


@dataclass(frozen=True)
class Marker:
    spec: str  # DemoSpec.key()
    checksum: str | None  # None: written by a Shepherd from before checksums (complete all the same)
    loaded_at: datetime | None
    stats: dict[str, Any]


def checksum(spec_key: str, per_table: dict[str, int], per_cluster: dict[str, int]) -> str:
    doc = json.dumps({"spec": spec_key, "tables": per_table, "clusters": per_cluster}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


# ---- Postgres ------------------------------------------------------------------------------


def _ensure_pg_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS public.demo_meta (spec text NOT NULL, stats jsonb NOT NULL)")
    conn.execute("ALTER TABLE public.demo_meta ADD COLUMN IF NOT EXISTS checksum text,"
                 " ADD COLUMN IF NOT EXISTS loaded_at timestamptz")


def read_pg_marker(conn: psycopg.Connection[Any]) -> Marker | None:
    _ensure_pg_table(conn)
    row = conn.execute("SELECT spec, checksum, loaded_at, stats FROM public.demo_meta LIMIT 1").fetchone()
    if row is None:
        return None
    return Marker(str(row[0]), row[1], row[2], dict(row[3] or {}))


def write_pg_marker(conn: psycopg.Connection[Any], marker: Marker) -> None:
    _ensure_pg_table(conn)
    with conn.transaction():
        conn.execute("DELETE FROM public.demo_meta")
        conn.execute("INSERT INTO public.demo_meta (spec, stats, checksum, loaded_at) VALUES (%s, %s, %s, %s)",
                     (marker.spec, json.dumps(marker.stats), marker.checksum, marker.loaded_at or datetime.now(UTC)))


def clear_pg_marker(conn: psycopg.Connection[Any]) -> None:
    _ensure_pg_table(conn)
    conn.execute("DELETE FROM public.demo_meta")


def source_tables_exist(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('public.scorecards') IS NOT NULL").fetchone()
    return bool(row and row[0])


# ---- ClickHouse ----------------------------------------------------------------------------


def _marker_ch(ch_for: Callable[[str], ClickHouse]) -> ClickHouse:
    ch = ch_for(MARKER_DATABASE)
    ch.command(f"CREATE DATABASE IF NOT EXISTS {quote_ident(ch.database)}")
    ch.command(f"CREATE TABLE IF NOT EXISTS {ch_table(ch.database, 'marker')} (cluster String, spec String,"
               " checksum String, rows UInt64, loaded_at DateTime('UTC')) ENGINE = MergeTree ORDER BY cluster")
    return ch


def read_ch_markers(ch_for: Callable[[str], ClickHouse]) -> dict[str, tuple[str, str]]:
    """{cluster: (spec, checksum)} as recorded in ClickHouse."""
    ch = _marker_ch(ch_for)
    rows = ch.query(f"SELECT cluster, spec, checksum FROM {ch_table(ch.database, 'marker')}")
    return {str(c): (str(s), str(k)) for c, s, k in rows}


def write_ch_markers(ch_for: Callable[[str], ClickHouse], spec_key: str, sum_: str, per_cluster: dict[str, int],
                     at: datetime) -> None:
    ch = _marker_ch(ch_for)
    table = ch_table(ch.database, "marker")
    ch.command(f"TRUNCATE TABLE {table}")
    ch.command(f"INSERT INTO {table} SELECT c.1, {{spec:String}}, {{sum:String}}, c.2, {{at:DateTime('UTC')}}"
               " FROM (SELECT arrayJoin({clusters:Array(Tuple(String, UInt64))}) AS c)",
               {"spec": spec_key, "sum": sum_, "at": at.replace(microsecond=0), "clusters": list(per_cluster.items())})


def clear_ch_markers(ch_for: Callable[[str], ClickHouse]) -> None:
    ch = _marker_ch(ch_for)
    ch.command(f"TRUNCATE TABLE {ch_table(ch.database, 'marker')}")


# ---- checks ---------------------------------------------------------------------------------


def loaded_on(marker: Marker) -> str:
    return f" on {marker.loaded_at:%Y-%m-%d %H:%M} UTC" if marker.loaded_at else ""


def check_clickhouse(conn: psycopg.Connection[Any], ch_for: Callable[[str], ClickHouse], marker: Marker,
                     clusters: Sequence[str]) -> None:
    """Every cluster's ClickHouse marker must carry the Postgres marker's spec and checksum."""
    found = read_ch_markers(ch_for)
    if marker.checksum is None and not found:
        _upgrade_markers(conn, ch_for, marker)  # loaded by a Shepherd from before the markers
        return
    wrong = sorted(c for c in clusters if found.get(c) != (marker.spec, marker.checksum))
    if wrong:
        raise DemoDataMismatch(
            f"the demo's ClickHouse data does not match its Postgres data (no matching load marker for"
            f" {', '.join(wrong)}): it was deleted, or copied from another load. Nothing was reloaded over it:"
            f" {RESET_HINT}.")


def _upgrade_markers(conn: psycopg.Connection[Any], ch_for: Callable[[str], ClickHouse], marker: Marker) -> None:
    """A marker from before checksums (written after a complete load all the same): add the checksum."""
    per_cluster = {str(c): int(n) for c, n in conn.execute(
        "SELECT c.cluster, count(*) FROM scorecards s JOIN customers c ON c.id = s.customer_id GROUP BY 1")}
    per_table = {str(k): int(v) for k, v in dict(marker.stats.get("per_table") or {}).items()}
    sum_ = checksum(marker.spec, per_table, per_cluster)
    at = marker.loaded_at or datetime.now(UTC)
    write_ch_markers(ch_for, marker.spec, sum_, per_cluster, at)
    write_pg_marker(conn, Marker(marker.spec, sum_, at, marker.stats))
    log.info("demo: load marker of an older Shepherd upgraded with a checksum")
