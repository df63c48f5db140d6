"""The demo dataset: 95 customers on 8 clusters over 51 days, shaped like the seed week.

At scale 1.0 the named customers have production volumes (conversations per day): hilton,
marriott and spirit above the 80K 5-day threshold, united-east between 30K and 80K (8 windows of
7 days), oportun with so many appeals that its purge needs one-day chunks, care-oregon and a long
tail below 30K. Every conversation has one non-appeal scorecard (types 4-6); a share of them also
has an appeal scorecard (types 1-3); each scorecard has 8-10 scores. Rows are generated inside
Postgres from a small table of per-day counts (deterministic for a seed), then streamed to each
cluster's ClickHouse database as CSV ("before cleanup": appeals included).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from bot.adapters.ports import ClickHouse
from bot.embedded.demo_marker import (
    RESET_HINT,
    DemoSpecChanged,
    Marker,
    check_clickhouse,
    checksum,
    clear_ch_markers,
    clear_pg_marker,
    describe_spec,
    loaded_on,
    read_pg_marker,
    source_tables_exist,
    write_ch_markers,
    write_pg_marker,
)
from bot.embedded.schema import create_source_tables, create_target_tables, index_source_tables

log = logging.getLogger(__name__)

CLUSTERS = ("voice-prod", "chat-prod", "us-east-2", "us-west-2", "eu-west-1", "ca-central-1",
            "ap-southeast-2", "email-prod")
# name: (cluster, conversations per day at scale 1.0, appeal share)
NAMED: dict[str, tuple[str, int, float]] = {
    "hilton": ("chat-prod", 90_000, 0.25),
    "marriott": ("chat-prod", 86_000, 0.25),
    "spirit": ("voice-prod", 83_000, 0.25),
    "united-east": ("voice-prod", 45_000, 0.25),
    "oportun": ("us-east-2", 70_000, 1.0),
    "care-oregon": ("us-west-2", 12_000, 0.25),
}
TAIL_WORDS = ("acme", "globex", "initech", "umbrella", "stark", "wayne", "wonka", "hooli", "vandelay", "soylent",
              "tyrell", "cyberdyne", "aperture", "oscorp", "massive", "dynamic", "pied", "gringotts", "monarch",
              "nakatomi", "zorg", "bluth", "dunder", "kramerica", "prestige", "sterling", "virtucon", "yoyodyne",
              "duff", "krusty")
TAIL_SUFFIXES = ("health", "bank", "air", "telecom")
BATCH_BYTES = 32 << 20


@dataclass(frozen=True)
class DemoSpec:
    scale: float = 0.005
    seed: int = 7
    start: date = date(2026, 1, 3)
    days: int = 51

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)

    def key(self) -> str:
        return json.dumps({**asdict(self), "start": self.start.isoformat(), "v": 1}, sort_keys=True)


@dataclass
class DemoStats:
    customers: int = 0
    conversations: int = 0
    scorecards: int = 0
    appeal_scorecards: int = 0
    scores: int = 0
    seconds: float = 0.0
    reloaded: bool = False  # loaded by this call (False: the marked load was reused)
    loaded_at: str | None = None  # ISO time the load completed
    after_partial: bool = False  # an earlier, unfinished load (no marker) was found and replaced
    per_table: dict[str, int] = field(default_factory=dict)


def ch_database(cluster: str) -> str:
    return "cluster_" + cluster.replace("-", "_").replace(".", "_")


def customers(spec: DemoSpec) -> list[tuple[str, str, float, float]]:
    """(name, cluster, conversations/day at scale 1.0, appeal share) for all 95 customers."""
    rng = random.Random(spec.seed)
    out = [(n, c, float(v), a) for n, (c, v, a) in NAMED.items()]
    names = [f"{w}-{s}" for s in TAIL_SUFFIXES for w in TAIL_WORDS]
    rng.shuffle(names)
    for i, name in enumerate(sorted(names[:89])):
        volume = min(24_000.0, rng.lognormvariate(math.log(3_000), 0.9))
        out.append((name, CLUSTERS[i % len(CLUSTERS)], volume, rng.choice((0.1, 0.2, 0.25, 0.3))))
    return out


def daily_counts(spec: DemoSpec) -> list[tuple[str, date, int, int]]:
    """(customer, day, conversations, appeals) — deterministic for the spec."""
    rng = random.Random(spec.seed * 7919 + 1)
    rows = []
    for name, _, volume, share in customers(spec):
        for i in range(spec.days):
            day = spec.start + timedelta(days=i)
            weekend = 0.8 if day.weekday() >= 5 else 1.06
            n = max(1, round(volume * spec.scale * weekend * rng.uniform(0.92, 1.08)))
            rows.append((name, day, n, min(n, round(n * share))))
    return rows


def demo_config(spec: DemoSpec, db_prefix: str = "") -> dict[str, Any]:
    """shepherd.yml for the demo: thresholds, throughput and purge cap scaled with the data."""
    s = spec.scale

    def region(name: str, cluster: str) -> dict[str, Any]:
        return {"name": name, "engine": "chdb", "database": db_prefix + ch_database(cluster), "tls": False}

    clusters = [
        {"name": c, "regions": [region("us-east-1", c), region("us-west-2", c)] if c == "voice-prod"
         else [region("local", c)]}
        for c in CLUSTERS
    ]
    return {
        "timezone": "UTC",
        "default_range": {"start": spec.start.isoformat(), "end": spec.end.isoformat()},
        "clusters": clusters,
        "customers": {"explicit": [{"name": n, "cluster": c} for n, c, _, _ in customers(spec)]},
        "windows": {
            "rules": [
                {"min_daily": round(80_000 * s), "window_days": 5},
                {"min_daily": round(30_000 * s), "window_days": 7},
                {"min_daily": 0, "window_days": 10},
            ],
            "max_window_hours": 16,
        },
        "throughput": {"low": 35_000 * s, "high": 50_000 * s},
        "purge": {"max_rows_per_mutation": max(1, round(800_000 * s))},
        # The demo's windows last seconds to minutes, not hours: the autopilot judges and moves faster
        # (heartbeats reach Temporal every 5 s, so a read every 6 s sees a new one from each window).
        "backfill": {"autopilot": {"hold_s": 20, "settle_s": 6, "interval_s": 6}},
        "lookup": {"attempts_per_region": 3, "base_delay_s": 0.05, "max_delay_s": 0.5},
        "verify": {"after_jobs": True},  # so `shepherd dev` shows the verdict under a finished job's summary
        "access": {
            "operators": ["U_ALICE", "U_CAROL"],
            "approvers": ["U_ALICE", "U_BOB"],
            "allowed_channels": ["C_OPS"],
        },
    }


def load_demo(pg_dsn: str, ch_for: Callable[[str], ClickHouse], spec: DemoSpec, db_prefix: str = "", *,
              reload_other_spec: bool = False) -> DemoStats:
    """Load the dataset once: Postgres source tables, then every cluster's ClickHouse database, then the
    markers (bot/embedded/demo_marker.py). Loaded data is never loaded again nor "repaired": jobs change
    it on purpose. A demo of another spec raises DemoSpecChanged (`reload_other_spec`: replace it, for
    benchmarks that own their data directory); ClickHouse markers that do not match raise DemoDataMismatch.
    """
    began = time.monotonic()
    prefixed = lambda db: ch_for(db_prefix + db)  # noqa: E731
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        marker = read_pg_marker(conn)
        if marker is not None and (marker.spec == spec.key() or not reload_other_spec):
            if marker.spec != spec.key():
                raise DemoSpecChanged(
                    f"this data directory holds the demo loaded with {describe_spec(marker.spec)}"
                    f"{loaded_on(marker)}; you asked for {describe_spec(spec.key())}. Jobs may have changed that data,"
                    f" so it is not loaded over: {RESET_HINT}, or use another --data-dir.")
            check_clickhouse(conn, prefixed, marker, CLUSTERS)
            index_source_tables(conn)  # data loaded by an older Shepherd gets today's indexes
            known = {k: v for k, v in marker.stats.items() if k in DemoStats.__dataclass_fields__}
            return DemoStats(**{**known, "seconds": round(time.monotonic() - began, 2), "reloaded": False,
                                "loaded_at": marker.loaded_at.isoformat() if marker.loaded_at else None})
        partial = marker is None and source_tables_exist(conn)
        if partial:
            log.warning("demo: an earlier load did not finish (no load marker): loading it again")
        clear_pg_marker(conn)  # from here on the data is not loaded until the markers say so
        clear_ch_markers(prefixed)
        stats = _load_postgres(conn, spec)
        copied = {cluster: _copy_cluster(conn, prefixed(ch_database(cluster)), cluster) for cluster in CLUSTERS}
        loaded_at = datetime.now(UTC)
        stats.seconds = round(time.monotonic() - began, 2)
        stats.reloaded, stats.loaded_at, stats.after_partial = True, loaded_at.isoformat(), partial
        sum_ = checksum(spec.key(), stats.per_table, copied)
        write_ch_markers(prefixed, spec.key(), sum_, copied, loaded_at)
        write_pg_marker(conn, Marker(spec.key(), sum_, loaded_at, asdict(stats)))
        return stats


def _load_postgres(conn: psycopg.Connection[Any], spec: DemoSpec) -> DemoStats:
    conn.execute("DROP TABLE IF EXISTS scores, scorecards, conversations, customers, demo_days")
    conn.execute("SET synchronous_commit = off")
    create_source_tables(conn)
    with conn.transaction():
        conn.execute("CREATE TABLE demo_days (customer_id text, day date, first_id bigint, n int, appeals int)")
        with conn.cursor().copy("COPY demo_days FROM STDIN") as copy:
            next_id = 1
            for name, day, n, appeals in daily_counts(spec):
                copy.write_row((name, day, next_id, n, appeals))
                next_id += n
        with conn.cursor().copy("COPY customers FROM STDIN") as copy:
            for name, cluster, _, _ in customers(spec):
                copy.write_row((name, cluster))
        # Conversation g of a day starts g/n of the way through it; its scorecards a second later.
        conn.execute(
            "INSERT INTO conversations SELECT d.first_id + g, d.customer_id,"
            " d.day + make_interval(secs => (g * 86000.0 / d.n)) FROM demo_days d, generate_series(0, d.n - 1) g"
        )
        conn.execute(
            "INSERT INTO scorecards SELECT c.id * 2, c.customer_id, c.id, 4 + (c.id % 3), c.started_at + interval '1 s'"
            " FROM conversations c"
        )
        conn.execute(
            "INSERT INTO scorecards SELECT (d.first_id + g) * 2 + 1, d.customer_id, d.first_id + g,"
            " 1 + ((d.first_id + g) % 3), d.day + make_interval(secs => (g * 86000.0 / d.n) + 2)"
            " FROM demo_days d, generate_series(0, d.appeals - 1) g"
        )
        conn.execute(
            "INSERT INTO scores SELECT s.id * 16 + k, s.id, k + 1, ((s.id * 31 + k * 7) % 100) / 10.0"
            " FROM scorecards s, generate_series(0, 7 + (s.id % 3)::int) k"
        )
        conn.execute("DROP TABLE demo_days")
    index_source_tables(conn)
    # VACUUM, not only ANALYZE: it sets the visibility map, without which an index-only scan (verify
    # counts scores over scores(scorecard_id)) visits the heap for every row. Production tables get
    # this from autovacuum; a freshly loaded demo would wait for it.
    conn.execute("VACUUM (ANALYZE) customers, conversations, scorecards, scores")
    counts = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
              for t in ("customers", "conversations", "scorecards", "scores")}
    appeal_row = conn.execute("SELECT count(*) FROM scorecards WHERE scorecard_type <= 3").fetchone()
    return DemoStats(
        customers=counts["customers"], conversations=counts["conversations"], scorecards=counts["scorecards"],
        appeal_scorecards=int(appeal_row[0]) if appeal_row else 0, scores=counts["scores"], per_table=counts,
    )


def _copy_cluster(conn: psycopg.Connection[Any], ch: ClickHouse, cluster: str) -> int:
    """Copy the cluster's customers' rows; returns the scorecards copied."""
    ch.command(f"DROP TABLE IF EXISTS `{ch.database}`.`scores`")
    ch.command(f"DROP TABLE IF EXISTS `{ch.database}`.`scorecards`")
    create_target_tables(ch)
    cards = (
        "SELECT s.customer_id, (s.created_at AT TIME ZONE 'UTC')::date, s.id, s.conversation_id, s.scorecard_type,"
        " to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
        " FROM scorecards s JOIN customers c ON c.id = s.customer_id WHERE c.cluster = {cluster}"
    )
    scores = (
        "SELECT s.customer_id, (s.created_at AT TIME ZONE 'UTC')::date, x.scorecard_id, x.criterion_id, x.value"
        " FROM scores x JOIN scorecards s ON s.id = x.scorecard_id JOIN customers c ON c.id = s.customer_id"
        " WHERE c.cluster = {cluster}"
    )
    rows = stream_copy(conn, cards, {"cluster": cluster}, ch, "scorecards",
                       ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type", "created_at"])
    stream_copy(conn, scores, {"cluster": cluster}, ch, "scores",
                ["customer_id", "day", "scorecard_id", "criterion_id", "value"])
    return rows


def stream_copy(conn: psycopg.Connection[Any], select: str, params: dict[str, Any], ch: ClickHouse, table: str,
                columns: list[str]) -> int:
    """Postgres `COPY (select) TO STDOUT (FORMAT csv)` streamed into ClickHouse CSV inserts, in batches."""
    from psycopg import sql

    query = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(
        sql.SQL(select).format(**{k: sql.Literal(v) for k, v in params.items()})
    )
    rows = 0
    buffer = bytearray()
    with conn.cursor().copy(query) as copy:
        for block in copy:
            buffer += block
            if len(buffer) >= BATCH_BYTES:
                cut = buffer.rfind(b"\n") + 1
                rows += ch.insert_csv(table, columns, bytes(buffer[:cut]))
                del buffer[:cut]
    if buffer:
        rows += ch.insert_csv(table, columns, bytes(buffer))
    return rows
