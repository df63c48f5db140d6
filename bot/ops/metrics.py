"""Shepherd's Prometheus metrics: one `ShepherdMetrics` per process, built by the composition root.

Counters and histograms are updated where things happen (Slack calls, acks, monitor ticks,
verifications, activities); figures that live in Postgres (jobs by kind and state, the outbox,
windows running and their rows per second) are read when /metrics is scraped (`StateCollector`).
Each instance has its own CollectorRegistry: nothing is global.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger(__name__)

ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
VERIFY_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
ACTIVITY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)


def slack_result(status: int | None) -> str:
    """ok, 429, 5xx, 4xx, or error (no HTTP answer)."""
    if status is None:
        return "error"
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    return "ok"


class ShepherdMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.slack_calls = Counter("shepherd_slack_calls", "Slack Web API calls (each HTTP attempt) by result",
                                   ["method", "result"], registry=r)
        self.ack_seconds = Histogram("shepherd_ack_seconds", "Time from a Slack request's arrival to its ack",
                                     ["command"], buckets=ACK_BUCKETS, registry=r)
        self.monitor_tick_seconds = Histogram("shepherd_monitor_tick_seconds", "Duration of a monitor tick",
                                              buckets=TICK_BUCKETS, registry=r)
        self.monitor_ticks_failed = Counter("shepherd_monitor_ticks_failed", "Monitor ticks that raised",
                                            registry=r)
        self.verify_seconds = Histogram("shepherd_verification_seconds", "Duration of a verification",
                                        buckets=VERIFY_BUCKETS, registry=r)
        self.activities_running = Gauge("shepherd_activities_running",
                                        "Activities running in this worker (reindex_window: a backfill window;"
                                        " purge_chunk: a purge chunk)", ["activity"], registry=r)
        self.activity_seconds = Histogram("shepherd_activity_seconds", "Duration of an activity by outcome",
                                          ["activity", "outcome"], buckets=ACTIVITY_BUCKETS, registry=r)

        self.mutations_unfinished = Gauge("shepherd_mutations_unfinished",
                                          "Unfinished ClickHouse mutations of a table, as a purge chunk last read them",
                                          ["cluster", "table"], registry=r)

    def watch_state(self, pool: Any) -> None:
        """Read jobs, the outbox and the windows running from this Postgres pool at each scrape."""
        self.registry.register(StateCollector(pool))

    def observe_tick(self, seconds: float) -> None:
        self.monitor_tick_seconds.observe(seconds)

    def observe_verification(self, seconds: float) -> None:
        self.verify_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def slack_counter(self) -> SlackCallCounter:
        return SlackCallCounter(self)


class SlackCallCounter(AsyncRetryHandler):
    """Counts every Slack Web API response by result; never asks for a retry.

    slack_sdk asks each retry handler about every response (and every connection error) before
    deciding to retry: first in the list, this one sees them all, retries included.
    """

    never_retries = True  # the outbox poster accepts it: it does its own retrying

    def __init__(self, metrics: ShepherdMetrics) -> None:
        super().__init__(max_retry_count=0)
        self.metrics = metrics

    async def can_retry_async(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                              error: Exception | None = None) -> bool:
        method = request.url.rstrip("/").rsplit("/", 1)[-1] or "unknown"
        self.metrics.slack_calls.labels(method, slack_result(response.status_code if response else None)).inc()
        return False


STATE_SQL = {
    "jobs": "SELECT kind, state, count(*) FROM shepherd.jobs GROUP BY 1, 2",
    "outbox": "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM shepherd.outbox"
              " WHERE state = 'pending'",
    # the last two samples of each window of each active job: its state now and its rows per second
    "windows": """
        SELECT kind, state, count(*), COALESCE(sum(rate), 0) FROM (
          SELECT DISTINCT ON (s.job_id, s.window_key) j.kind, s.state,
                 CASE WHEN s.state = 'running' AND prev_at IS NOT NULL AND s.at > prev_at
                      THEN GREATEST(s.done - prev_done, 0) / EXTRACT(EPOCH FROM s.at - prev_at) ELSE 0 END AS rate
          FROM (SELECT *, lag(done) OVER w AS prev_done, lag(at) OVER w AS prev_at
                FROM shepherd.progress_samples
                WHERE job_id IN (SELECT id FROM shepherd.jobs
                                 WHERE state IN ('running', 'waiting', 'paused', 'cancelling'))
                WINDOW w AS (PARTITION BY job_id, window_key ORDER BY at)) s
          JOIN shepherd.jobs j ON j.id = s.job_id
          ORDER BY s.job_id, s.window_key, s.at DESC) latest
        GROUP BY 1, 2""",
}


class StateCollector(Collector):
    """Figures read from Postgres when scraped; a failed read is logged and leaves them out."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("shepherd_jobs", "Jobs by kind and state", labels=["kind", "state"])
        depth = GaugeMetricFamily("shepherd_outbox_depth", "Slack calls waiting in the outbox")
        oldest = GaugeMetricFamily("shepherd_outbox_oldest_age_seconds", "Age of the oldest Slack call waiting")
        windows = GaugeMetricFamily("shepherd_windows", "Windows of active jobs by state (monitor's last reading)",
                                    labels=["kind", "state"])
        rate = GaugeMetricFamily("shepherd_rows_per_second", "Rows (conversations) per second of the windows"
                                 " running, between the monitor's last two readings", labels=["kind"])
        began = time.monotonic()
        try:
            with self.pool.connection(timeout=5) as conn:
                for kind, state, n in conn.execute(STATE_SQL["jobs"]).fetchall():
                    jobs.add_metric([kind, state], n)
                count, age = conn.execute(STATE_SQL["outbox"]).fetchone()
                depth.add_metric([], count)
                oldest.add_metric([], float(age))
                rates: dict[str, float] = {}
                for kind, state, n, per_s in conn.execute(STATE_SQL["windows"]).fetchall():
                    windows.add_metric([kind, state or "unknown"], n)
                    rates[kind] = rates.get(kind, 0.0) + float(per_s)
                for kind, per_s in rates.items():
                    rate.add_metric([kind], per_s)
        except Exception as err:
            log.warning("metrics: reading Postgres failed: %s", type(err).__name__)
            return
        yield from (jobs, depth, oldest, windows, rate)
        scrape = GaugeMetricFamily("shepherd_state_scrape_seconds", "Time to read the figures from Postgres")
        scrape.add_metric([], time.monotonic() - began)
        yield scrape
