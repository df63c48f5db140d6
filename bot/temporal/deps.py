"""What activities need, built once per worker by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.adapters.clusters import ClusterLookup
from bot.config import ShepherdConfig


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ActivityDeps:
    config: ShepherdConfig
    source: Any  # psycopg ConnectionPool: the source scorecards
    state: Any  # psycopg ConnectionPool: the bot's schema (locks, jobs)
    lookup: ClusterLookup
    clock: Callable[[], datetime] = field(default=utc_now)
    # The Temporal identity of the worker running the activities (set by build_worker from its client);
    # results carry it, so a job shows which worker ran each window or chunk.
    worker_identity: str = ""
    # Told (cluster, table, count) each time a purge reads a table's unfinished mutations: the worker's
    # /metrics shows them as shepherd_mutations_unfinished.
    on_unfinished_mutations: Callable[[str, str, int], None] | None = None

