"""Planning service: read volumes from the stores (one grouped query per source), then call the
pure planners in `commands/`.

Postgres gives the backfill volumes (non-appeal scorecards per customer and day); each cluster's
ClickHouse gives the rows a purge would delete (per customer and day, both tables).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from bot.adapters.clusters import ClusterLookup, LookupResult
from bot.adapters.sql import ch_table
from bot.backfill.source_volumes import SourceVolumes
from bot.config import ShepherdConfig
from bot.cpu import run_inline
from bot.errors import UserInputError
from bot.purge.key_ranges import KeyRangeReader
from bot.registry import CustomerRegistry
from commands import limits
from commands.estimates import PastWindow, learned_rates, throughput_for
from commands.key_chunks import Cut, TableDays, TableKey, cuts_needed, lower_bound, plan_key_range_purge
from commands.models import BackfillPlan, CustomerRef, DateRange, DayVolume, PurgeDays, PurgePlan, PurgePolicy
from commands.schedule import plan_backfill_series

T = TypeVar("T")


@dataclass(frozen=True)
class BackfillRequest:
    customers: tuple[str, ...] | None  # None: all
    range: DateRange | None = None  # None: the configured default range
    window_days: int | None = None  # None: the policy decides
    parallel: int | None = None  # None: configured default


@dataclass(frozen=True)
class PurgeRequest:
    customers: tuple[str, ...] | None
    range: DateRange | None = None
    types: tuple[int, ...] | None = None  # None: the configured appeal types
    clusters: tuple[str, ...] | None = None  # None: every cluster
    max_rows: int | None = None  # None: the configured cap


@dataclass
class PurgePlanResult:
    plan: PurgePlan
    lookups: dict[str, LookupResult] = field(default_factory=dict)


class PlanningService:
    def __init__(
        self,
        config: ShepherdConfig,
        registry: CustomerRegistry,
        source: Any,  # psycopg ConnectionPool of the source database
        lookup: ClusterLookup,
    ) -> None:
        self.config = config
        self.registry = registry
        self.source = source
        self.lookup = lookup
        self.volumes = SourceVolumes(source, config.source, config.appeal_types)
        # Where the pure planners run: inline, or (serve, dev) a worker process (bot/cpu.py), set by bot/app.py.
        self.compute: Callable[..., Any] = run_inline
        # The customers' finished windows (bot/backfill/rate_history.py), set by bot/app.py: the estimates learn.
        self.history: Callable[[Sequence[str]], list[PastWindow]] | None = None

    def default_range(self, today: date) -> DateRange:
        return self.config.default_range.resolve(today)

    def range_for(self, start: date | None, end: date | None, today: date) -> DateRange:
        """--from/--to as typed (inside the configured span); a missing end is the default range's."""
        return checked_range(self.config, start, end, today)

    # ---- backfill ------------------------------------------------------------------

    def plan_backfill(self, req: BackfillRequest, today: date) -> BackfillPlan:
        customers = self.registry.resolve(req.customers)
        sharded = sorted({c.cluster for c in customers if self.config.cluster(c.cluster).shards})
        if sharded:
            raise UserInputError(f"cluster {', '.join(sharded)} is sharded (shards: in shepherd.yml): Shepherd does"
                                 " not backfill into it (a row's shard is the cluster's sharding key)")
        rng = req.range or self.default_range(today)
        _user(limits.check_span, rng.start, rng.end, self.config.limits, today)
        parallel = req.parallel or self.config.backfill.default_parallel
        _user(limits.check_parallel, parallel, self.config.backfill.max_parallel)
        first, last = self.volumes.bounds([c.name for c in customers], rng)
        rng, clipped = _user(limits.clip_to_data, rng, first, last, "backfill")
        series = self.backfill_series(customers, rng)
        names = [c.name for c in customers]
        learned = learned_rates(self.history(names)) if self.history is not None else {}
        throughput, rates = throughput_for(names, learned, self.config.throughput)
        plan = self.compute(
            plan_backfill_series, series, customers, rng, self.config.windows, throughput, parallel,
            req.window_days, rates,
        )
        _user(limits.check_plan_size, len(plan.windows), self.config.limits.max_windows, "windows",
              "limits.max_windows")
        return plan.model_copy(update={"notes": (clipped,)}) if clipped else plan

    def backfill_series(self, customers: Sequence[CustomerRef], rng: DateRange) -> dict[str, list[int]]:
        """Each customer's volume on every day of `rng` (what the planner needs)."""
        return self.volumes.day_series([c.name for c in customers], rng)

    def backfill_volumes(self, customers: Sequence[CustomerRef], rng: DateRange) -> list[DayVolume]:
        return self.volumes.day_volumes([c.name for c in customers], rng)

    # ---- purge ---------------------------------------------------------------------

    def plan_purge(self, req: PurgeRequest, today: date) -> PurgePlanResult:
        customers = self.registry.resolve(req.customers)
        clusters = self.registry.check_clusters(req.clusters)
        customers = [c for c in customers if c.cluster in clusters]
        if not customers:
            raise UserInputError("none of those customers lives on the chosen clusters")
        rng = req.range or self.default_range(today)
        _user(limits.check_span, rng.start, rng.end, self.config.limits, today)
        _user(limits.check_types, req.types, self.config.appeal_types)
        policy = self.config.purge
        _user(limits.check_max_rows, req.max_rows, policy.max_rows_per_mutation)
        types = req.types or self.config.appeal_types
        if req.max_rows is not None:
            policy = policy.model_copy(update={"max_rows_per_mutation": req.max_rows})
        return self.plan_key_ranges(customers, rng, types, policy)

    def plan_key_ranges(self, customers: Sequence[CustomerRef], rng: DateRange, types: Sequence[int],
                        policy: PurgePolicy) -> PurgePlanResult:
        """Key-range chunks (`commands/key_chunks.py`): per cluster, the sort keys, the per-day counts per
        partition, the size checked against the limits, then the cut keys (one query per day with cuts);
        clusters are asked at once. The range is
        clipped to the days that hold rows to delete, and the plan's size is checked against the limits."""
        by_cluster: dict[str, list[str]] = defaultdict(list)
        for c in customers:
            by_cluster[c.cluster].append(c.name)
        cap = policy.max_rows_per_mutation

        Found = tuple[LookupResult, KeyRangeReader, list[TableDays], dict[Any, Any]]

        def read(cluster: str, names: list[str]) -> Found:
            found = self.lookup.connect(cluster)
            reader = KeyRangeReader(found.client, cluster, self.config.target, self.config.cluster(cluster).on_cluster)
            keys, partitions = reader.table_keys()
            return found, reader, reader.table_days(names, rng, types, partitions), keys

        entries: list[TableDays] = []
        keys: dict[tuple[str, str], TableKey] = {}
        cut_keys: dict[Cut, tuple[str, ...]] = {}
        lookups: dict[str, LookupResult] = {}
        readers: dict[str, tuple[KeyRangeReader, list[TableDays]]] = {}
        with ThreadPoolExecutor(max_workers=max(len(by_cluster), 1)) as pool:
            futures = {cluster: pool.submit(read, cluster, names) for cluster, names in sorted(by_cluster.items())}
            for cluster, future in futures.items():
                lookups[cluster], reader, found, k = future.result()
                readers[cluster] = (reader, found)
                entries += found
                keys.update(k)
            # a plan too large is refused before its cut keys are looked up (a tiny --max-rows means many)
            _user(limits.check_plan_size, lower_bound(entries, cap), self.config.limits.max_chunks, "chunks",
                  "limits.max_chunks")
            for cuts in pool.map(lambda rf: rf[0].cut_keys(cuts_needed(rf[1], cap), keys, types), readers.values()):
                cut_keys.update(cuts)
        held = [d for entry in entries if entry.days for d in (entry.days[0], entry.days[-1])]
        rng, clipped = _user(limits.clip_to_data, rng, min(held, default=None), max(held, default=None), "delete")
        plan = self.compute(plan_key_range_purge, entries, keys, cut_keys, customers, rng, types, policy)
        _user(limits.check_plan_size, sum(len(cp.chunks) for cp in plan.clusters), self.config.limits.max_chunks,
              "chunks", "limits.max_chunks")
        return PurgePlanResult(plan.model_copy(update={"notes": (clipped,)}) if clipped else plan, lookups)

    def purge_days(
        self, customers: Sequence[CustomerRef], rng: DateRange, types: Sequence[int]
    ) -> tuple[dict[str, PurgeDays], dict[str, LookupResult]]:
        """Per customer, its days with rows of `types` to delete in its cluster, and how each cluster was reached."""
        by_cluster: dict[str, list[str]] = defaultdict(list)
        for c in customers:
            by_cluster[c.cluster].append(c.name)

        def one(cluster: str, names: list[str]) -> tuple[LookupResult, list[PurgeDays]]:
            found = self.lookup.connect(cluster)
            return found, self._cluster_days(found, cluster, names, rng, types)

        days: dict[str, PurgeDays] = {}
        lookups: dict[str, LookupResult] = {}
        # Clusters are separate servers: ask them all at once (the plan waits for the slowest, not the sum).
        with ThreadPoolExecutor(max_workers=max(len(by_cluster), 1)) as pool:
            futures = {cluster: pool.submit(one, cluster, names) for cluster, names in sorted(by_cluster.items())}
            for cluster, future in futures.items():
                lookups[cluster], found = future.result()
                days.update((entry.customer, entry) for entry in found)
        return days, lookups

    def _cluster_days(
        self, found: LookupResult, cluster: str, names: list[str], rng: DateRange, types: Sequence[int]
    ) -> list[PurgeDays]:
        ch = found.client
        cards = ch_table(ch.database, self.config.target.scorecards)
        scores = ch_table(ch.database, self.config.target.scores)
        where = (
            "customer_id IN {customers:Array(String)} AND day BETWEEN {lo:Date} AND {hi:Date}"
            " AND scorecard_type IN {types:Array(UInt8)}"
        )
        # One round trip per cluster, one row per customer: its days with rows, in order, and both tables'
        # counts on each. Scorecard ids are unique (the source's primary key), so the scores' semi-join
        # needs the id alone: 3x faster than a tuple. PREWHERE reads the other columns only for the scores
        # it keeps; both tables are sorted by (customer_id, day), so they are counted in that order.
        query = (
            "SELECT customer_id, arrayMap(t -> t.1, r), arrayMap(t -> t.2, r), arrayMap(t -> t.3, r) FROM ("
            " SELECT customer_id, arraySort(groupArray((day, toUInt32(c), toUInt32(s)))) AS r FROM ("
            "  SELECT customer_id, day, sum(c) AS c, sum(s) AS s FROM ("
            f"   SELECT customer_id, day, count() AS c, toUInt64(0) AS s FROM {cards} WHERE {where}"
            "    GROUP BY customer_id, day"
            f"   UNION ALL SELECT customer_id, day, toUInt64(0) AS c, count() AS s FROM {scores}"
            f"    PREWHERE scorecard_id IN (SELECT scorecard_id FROM {cards} WHERE {where})"
            "    WHERE customer_id IN {customers:Array(String)} AND day BETWEEN {lo:Date} AND {hi:Date}"
            "    GROUP BY customer_id, day"
            "  ) GROUP BY customer_id, day"
            " ) GROUP BY customer_id"
            ") SETTINGS optimize_aggregation_in_order = 1"
        )
        params = {"customers": names, "lo": rng.start, "hi": rng.end, "types": list(types)}
        return [
            PurgeDays(cluster, customer, [_as_date(d) for d in days], counts_cards, counts_scores)
            for customer, days, counts_cards, counts_scores in ch.query(query, params)
        ]


def checked_range(config: ShepherdConfig, start: date | None, end: date | None, today: date) -> DateRange:
    """--from/--to inside the configured span, in order; a missing end is the default range's."""
    _user(limits.check_span, start, end, config.limits, today)
    default = config.default_range.resolve(today)
    lo, hi = start or default.start, end or default.end
    if lo > hi:
        raise UserInputError(f"--from {lo} is after --to {hi}")
    return DateRange(start=lo, end=hi)


def _user(check: Callable[..., T], *args: Any) -> T:
    """A pure check's ValueError is the person's input error."""
    try:
        return check(*args)
    except ValueError as err:
        raise UserInputError(str(err)) from None


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
