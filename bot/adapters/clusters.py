"""Cluster lookup: a cluster name -> a checked ClickHouse connection, with retries and region fallback.

In the seed week `cresta-cli connstring` intermittently answered an empty `validClusters` for
voice-prod; the manual workaround was to retry, or to use the other region. Here a region is tried
up to `attempts_per_region` times with jittered exponential backoff ("full jitter": a delay drawn
uniformly from [0, min(max_delay_s, base_delay_s * 2**(n-1))] after the n-th failure), then the
next region of the cluster in configured order, at once. An attempt fails when the resolver
answers None (no valid clusters), raises, or returns a connection whose `SELECT 1` fails.
A missing setting (ConfigError) is not retried: the region is abandoned after that attempt.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bot.adapters.clickhouse import ChdbClickHouse, connect_region
from bot.adapters.ports import ClickHouse, RegionResolver
from bot.adapters.shards import ShardedClickHouse
from bot.config import Cluster, LookupSettings, Region
from bot.errors import ClusterUnavailable, ConfigError, ShepherdError, UserInputError

log = logging.getLogger(__name__)

NO_CLUSTERS = "no valid clusters in the answer"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)(\s*[=:]\s*)\S+")


def redact(text: str) -> str:
    """Remove credentials that a foreign error text might carry (URL user info, password=...)."""
    return _PASSWORD.sub(r"\1\2***", _USERINFO.sub(r"\1***@", text))


def _reason(err: BaseException) -> str:
    text = err.message if isinstance(err, ShepherdError) else (str(err) or type(err).__name__)
    text = redact(" ".join(text.split()))
    return text if len(text) <= 300 else text[:297] + "..."


class RegionAttempts(NamedTuple):
    """How one region went: its name, attempts made, and the last failure (None: none failed)."""

    region: str
    attempts: int
    last_error: str | None


@dataclass
class LookupResult:
    client: ClickHouse
    cluster: str
    region: str  # the region that answered
    attempts: int  # total attempts across all regions tried
    fell_back: bool  # True when the answering region is not the cluster's first
    tried: list[RegionAttempts] = field(default_factory=list)  # every region tried, in order

    def note(self) -> str | None:
        """One line for the job's thread when the lookup needed retries or a fallback, else None."""
        if self.region == "shards":
            slow = [f"shard {t.region} answered on attempt {t.attempts} ({t.last_error})" for t in self.tried
                    if t.attempts > 1]
            return f"Cluster {self.cluster}: " + "; ".join(slow) + "." if slow else None
        if self.attempts == 1:
            return None
        failed = [t for t in self.tried if t.region != self.region]
        parts = [f"{t.region} failed {_times(t.attempts)} ({t.last_error})" for t in failed]
        mine = next(t for t in self.tried if t.region == self.region)
        got = f"connected to {self.region}" + (f" on attempt {mine.attempts}" if mine.attempts > 1 else "")
        if self.fell_back:
            got = f"fell back: {got}"
        return f"Cluster {self.cluster}: " + "; ".join([*parts, got]) + "."


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


class ClusterLookup:
    def __init__(
        self,
        config_clusters: Iterable[Cluster],
        resolver: RegionResolver,
        settings: LookupSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.clusters: dict[str, Cluster] = {c.name: c for c in config_clusters}
        self.resolver = resolver
        self.settings = settings or LookupSettings()
        self.sleep = sleep
        self.rng = rng or random.Random()

    def backoff_cap(self, failures: int) -> float:
        """The upper bound of the delay after the `failures`-th failed attempt in a region."""
        s = self.settings
        return float(min(s.max_delay_s, s.base_delay_s * 2 ** (failures - 1)))

    def connect(self, cluster_name: str) -> LookupResult:
        cluster = self.clusters.get(cluster_name)
        if cluster is None:
            known = ", ".join(sorted(self.clusters)) or "(none configured)"
            raise UserInputError(f"unknown cluster {cluster_name!r}; known clusters: {known}")
        if cluster.shards:
            return self._connect_shards(cluster)
        tried: list[RegionAttempts] = []
        for index, region in enumerate(cluster.regions):
            client, outcome = self._try_region(cluster, region)
            tried.append(outcome)
            if client is not None:
                result = LookupResult(
                    client=client,
                    cluster=cluster.name,
                    region=region.name,
                    attempts=sum(t.attempts for t in tried),
                    fell_back=index > 0,
                    tried=tried,
                )
                if index > 0:
                    log.warning("cluster lookup: %s", result.note())
                return result
            if index + 1 < len(cluster.regions):
                log.warning(
                    "cluster %s: region %s failed %s (%s); falling back to %s",
                    cluster.name,
                    region.name,
                    _times(outcome.attempts),
                    outcome.last_error,
                    cluster.regions[index + 1].name,
                )
        raise ClusterUnavailable(_unavailable_message(cluster.name, tried))

    def _connect_shards(self, cluster: Cluster) -> LookupResult:
        """Every shard (each tried like a region, with retries), or ClusterUnavailable naming the ones down."""
        tried: list[RegionAttempts] = []
        clients: list[tuple[str, ClickHouse]] = []
        for shard in cluster.shards:
            client, outcome = self._try_region(cluster, shard)
            tried.append(outcome)
            if client is not None:
                clients.append((shard.name, client))
        down = [t for t in tried if t.region not in {name for name, _ in clients}]
        if down:
            for _, client in clients:
                client.close()
            said = "; ".join(f"shard {t.region} ({t.attempts} attempt{'s' if t.attempts != 1 else ''}):"
                             f" {t.last_error}" for t in down)
            raise ClusterUnavailable(f"cluster {cluster.name} is unavailable: {said}")
        return LookupResult(client=ShardedClickHouse(cluster.name, clients), cluster=cluster.name,
                            region="shards", attempts=sum(t.attempts for t in tried), fell_back=False, tried=tried)

    def _try_region(self, cluster: Cluster, region: Region) -> tuple[ClickHouse | None, RegionAttempts]:
        last_error: str | None = None
        limit = self.settings.attempts_per_region
        for attempt in range(1, limit + 1):
            retryable = True
            try:
                client = self.resolver.resolve(cluster, region)
                if client is None:
                    last_error = NO_CLUSTERS
                else:
                    check = self._check(client)
                    if check is None:
                        return client, RegionAttempts(region.name, attempt, last_error)
                    last_error = check
            except ConfigError as err:
                last_error, retryable = _reason(err), False
            except Exception as err:  # any failure of the lookup counts as one failed attempt
                last_error = _reason(err)
            log.info(
                "cluster %s region %s attempt %d/%d failed: %s",
                cluster.name,
                region.name,
                attempt,
                limit,
                last_error,
            )
            if not retryable:
                return None, RegionAttempts(region.name, attempt, last_error)
            if attempt < limit:
                self.sleep(self.rng.uniform(0.0, self.backoff_cap(attempt)))
        return None, RegionAttempts(region.name, limit, last_error)

    @staticmethod
    def _check(client: ClickHouse) -> str | None:
        """None when `SELECT 1` answers 1; else the reason, and the client is closed."""
        try:
            rows = client.query("SELECT 1")
            if rows and rows[0] and rows[0][0] == 1:
                return None
            reason = f"connection check returned {rows[:1]!r}"
        except Exception as err:
            reason = f"connection check failed: {_reason(err)}"
        try:
            client.close()
        except Exception:  # closing a broken connection may fail too; the check already did
            log.debug("closing a failed ClickHouse connection raised", exc_info=True)
        return reason


def _unavailable_message(cluster: str, tried: list[RegionAttempts]) -> str:
    regions = ", ".join(f"{t.region} ({t.attempts} attempt{'s' if t.attempts != 1 else ''})" for t in tried)
    last = tried[-1].last_error if tried else None
    return f"cluster {cluster} is unavailable: tried {regions}; last error: {last}"


class DefaultResolver:
    """Regions with engine "chdb" -> the process's chdb session (one database per cluster);
    engine "clickhouse" -> a clickhouse-connect client with credentials from `env`."""

    def __init__(self, env: Mapping[str, str], chdb_session_getter: Callable[[], Any]) -> None:
        self.env = env
        self.chdb_session_getter = chdb_session_getter

    def resolve(self, cluster: Cluster, region: Region) -> ClickHouse | None:
        if region.engine == "chdb":
            return ChdbClickHouse(self.chdb_session_getter(), region.database)
        return connect_region(region, self.env)
