"""The customer registry: which customers exist and on which cluster each lives.

Names from a person are checked here before they reach any query; an unknown name gets the
closest known names as a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import sql

from bot.config import ShepherdConfig
from bot.errors import UserInputError
from commands.models import CustomerRef


class CustomerRegistry:
    def __init__(self, customers: Iterable[CustomerRef], clusters: Sequence[str]) -> None:
        self._by_name = {c.name: c for c in customers}
        self.clusters = tuple(clusters)

    @classmethod
    def from_config(cls, config: ShepherdConfig, discovered: Iterable[tuple[str, str]] = ()) -> CustomerRegistry:
        known = {c.name for c in config.clusters}
        refs = [CustomerRef(name=n, cluster=c) for n, c in discovered if c in known]
        refs += [CustomerRef(name=e.name, cluster=e.cluster) for e in config.customers.explicit]
        return cls(refs, [c.name for c in config.clusters])

    def __len__(self) -> int:
        return len(self._by_name)

    def all(self) -> list[CustomerRef]:
        return list(self._by_name.values())

    def resolve(self, names: Sequence[str] | None) -> list[CustomerRef]:
        """None means all customers; otherwise every name must be known."""
        if names is None:
            return self.all()
        unknown = [n for n in names if n not in self._by_name]
        if unknown:
            raise UserInputError(self._unknown_message(unknown))
        return [self._by_name[n] for n in names]

    def check_clusters(self, names: Sequence[str] | None) -> tuple[str, ...]:
        if names is None:
            return self.clusters
        unknown = [n for n in names if n not in self.clusters]
        if unknown:
            raise UserInputError(
                f"unknown cluster {', '.join(unknown)}; known clusters: {', '.join(self.clusters)}"
            )
        return tuple(names)

    def _unknown_message(self, unknown: list[str]) -> str:
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, self._by_name, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            parts.append(f"{name}{hint}")
        noun = "customer" if len(unknown) == 1 else "customers"
        return f"unknown {noun}: {'; '.join(parts)}"


def discover_customers(conn: Any, config: ShepherdConfig) -> list[tuple[str, str]]:
    """Read (id, cluster) pairs from the source customers table (config.customers.discover)."""
    query = sql.SQL("SELECT id, cluster FROM {} ORDER BY id").format(sql.Identifier(config.source.customers))
    return [(str(r[0]), str(r[1])) for r in conn.execute(query).fetchall()]
