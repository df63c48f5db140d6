"""SQL identifiers: validated, then quoted. Values never go into SQL text: they are bound.

Every table, column and database name that reaches SQL text passes through here. A name must be
a plain identifier (`^[A-Za-z_][A-Za-z0-9_]{0,62}$`, the whole string); anything else is refused
with a `UserInputError` before any SQL is built, so quoting never has to escape anything.
"""

from __future__ import annotations

import re

from bot.errors import UserInputError

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_ident(name: str) -> str:
    """Return `name` if it is a plain identifier, else raise UserInputError."""
    if not isinstance(name, str) or IDENTIFIER.fullmatch(name) is None:
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise UserInputError(
            f"{shown} is not a valid SQL name: use letters, digits and _, starting with a letter or _,"
            " at most 63 characters"
        )
    return name


def quote_ident(name: str) -> str:
    """A ClickHouse identifier: `name` in backticks, after validation."""
    return f"`{check_ident(name)}`"


def pg_ident(name: str) -> str:
    """A Postgres identifier: "name" in double quotes, after validation."""
    return f'"{check_ident(name)}"'


def ch_table(db: str, table: str) -> str:
    """A qualified ClickHouse table reference: `db`.`table`."""
    return f"{quote_ident(db)}.{quote_ident(table)}"


def ch_source(db: str, table: str, on_cluster: str | None = None) -> str:
    """What a whole-cluster read names: the table, or on a ClickHouse cluster (`on_cluster`) one replica
    of every shard of it, `cluster('NAME', db, table)`."""
    if on_cluster:
        return f"cluster('{check_ident(on_cluster)}', {quote_ident(db)}, {quote_ident(table)})"
    return ch_table(db, table)
