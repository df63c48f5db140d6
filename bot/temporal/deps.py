"""What activities need, built once per worker by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.adapters.clusters import ClusterLookup
from bot.config import ShepherdConfig


@dataclass
class ActivityDeps:
    config: ShepherdConfig
    source: Any  # psycopg ConnectionPool: the source scorecards
    state: Any  # psycopg ConnectionPool: the bot's schema (locks, jobs)
    lookup: ClusterLookup
