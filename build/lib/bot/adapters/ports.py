"""The ports the rest of Shepherd codes against: a ClickHouse connection and a region resolver.

SQL handed to a `ClickHouse` binds every value with ClickHouse's server-side parameter syntax,
`{name:Type}` (`WHERE customer_id IN {customers:Array(String)} AND day = {d:Date}`), and names
tables with `bot.adapters.sql.ch_table(client.database, "scorecards")`. The same SQL runs on the
embedded engine (chdb) and on a ClickHouse server (clickhouse-connect).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from bot.config import Cluster, Region


@runtime_checkable
class ClickHouse(Protocol):
    """One cluster's ClickHouse database. Errors surface as `bot.errors.UpstreamError`."""

    @property
    def database(self) -> str:
        """The database this connection's tables live in."""
        ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows as tuples of Python values (ints as int, Date as datetime.date, Nullable as None)."""
        ...

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing useful (DDL, ALTER ... DELETE, KILL MUTATION)."""
        ...

    def insert_csv(self, table: str, columns: Sequence[str], csv_data: bytes) -> int:
        """Insert CSV rows into `table` (a name in `database`); returns the number of rows inserted."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RegionResolver(Protocol):
    """Turns a cluster's region into a connection.

    Returns None when the region answers "no valid clusters" (what `cresta-cli connstring` did for
    voice-prod intermittently); raises when the lookup itself fails. Either counts as one failed
    attempt to the caller, which retries with backoff and then falls back to the next region.
    """

    def resolve(self, cluster: Cluster, region: Region) -> ClickHouse | None: ...
