"""ClickHouse adapters: the embedded engine (chdb) and a server (clickhouse-connect), same SQL.

Both take `{name:Type}` parameters. chdb receives each value as ClickHouse parameter text (built
by `param_text`); clickhouse-connect formats Python values itself. chdb results are read as
JSONCompact and converted by the column types in its `meta` (`convert_rows`), so both adapters
give the same Python values: int, float, str, bool, datetime.date, datetime.datetime, None.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table, check_ident, quote_ident
from bot.config import Region
from bot.errors import ConfigError, UpstreamError

log = logging.getLogger(__name__)

_MAX_ERROR = 500


def _error_text(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


# ---- parameters: Python value -> ClickHouse parameter text (what chdb's params= expects) -------

_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def param_text(value: Any, top_level: bool = True) -> str:
    """The text ClickHouse parses for a `{name:Type}` parameter (top level: no quotes around strings)."""
    if value is None:
        return "\\N" if top_level else "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        # An aware time goes as a Unix timestamp (exact whatever the server's timezone); a naive one
        # as text, read in the server's (or the parameter type's) timezone.
        if value.tzinfo is not None:
            seconds = calendar.timegm(value.utctimetuple())
            text = f"{seconds}.{value.microsecond:06d}" if value.microsecond else str(seconds)
        else:
            text = value.isoformat(sep=" ")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, list | tuple | set | frozenset):
        items = ", ".join(param_text(v, top_level=False) for v in value)
        return f"({items})" if isinstance(value, tuple) else f"[{items}]"
    else:
        text = str(value)
    escaped = text.translate(_ESCAPES)
    return escaped if top_level else f"'{escaped}'"


# ---- results: JSONCompact value + ClickHouse type -> Python value --------------------------------


def _type_args(inner: str) -> list[str]:
    """Split `a, Tuple(b, c), 'x,y'` at top-level commas."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(inner):
        if ch == "'" and (i == 0 or inner[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


def _datetime_converter(args: list[str]) -> Callable[[Any], Any]:
    zones = [a.strip("'") for a in args if a.startswith("'")]
    tz = UTC if zones and zones[0] == "UTC" else (ZoneInfo(zones[0]) if zones else None)

    def convert(v: Any) -> Any:
        parsed = datetime.fromisoformat(v)
        return parsed.replace(tzinfo=tz) if tz is not None else parsed

    return convert


def _identity(v: Any) -> Any:
    return v


@lru_cache(maxsize=256)
def converter(type_name: str) -> Callable[[Any], Any]:
    """A function turning one JSONCompact value of `type_name` into its Python value."""
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", type_name.strip(), re.S)
    if match is None:
        return _identity
    base, args = match.group(1), _type_args(match.group(2)) if match.group(2) else []
    if base == "Nullable":
        inner = converter(args[0])
        return lambda v: None if v is None else inner(v)
    if base in ("LowCardinality", "SimpleAggregateFunction"):
        return converter(args[-1])
    if base == "Array":
        item = converter(args[0])
        return lambda v: [item(x) for x in v]
    if base == "Tuple" and args and all(re.fullmatch(r"\w+(\(.*\))?", a, re.S) for a in args):
        items = [converter(a) for a in args]
        return lambda v: tuple(c(x) for c, x in zip(items, v, strict=False)) if isinstance(v, list) else v
    if base == "Map":
        key, val = converter(args[0]), converter(args[1])
        return lambda v: {key(k): val(x) for k, x in v.items()}
    if base.startswith(("Int", "UInt")):
        return lambda v: v if v is None else int(v)
    if base.startswith(("Float", "BFloat")):
        return lambda v: v if v is None else float(v)
    if base.startswith("Decimal"):
        return lambda v: v if v is None else Decimal(str(v))
    if base in ("Date", "Date32"):
        return lambda v: date.fromisoformat(v)
    if base in ("DateTime", "DateTime64"):
        return _datetime_converter(args)
    if base == "Bool":
        return lambda v: v if v is None or isinstance(v, bool) else str(v).lower() in ("true", "1")
    return _identity  # String, FixedString, UUID, Enum*, IPv4/6 ...: the JSON string is the value


def convert_rows(payload: bytes) -> list[tuple[Any, ...]]:
    """Rows of a JSONCompact result as typed tuples (an empty payload, from DDL, gives [])."""
    if not payload.strip():
        return []
    doc = json.loads(payload)
    convs = [converter(col["type"]) for col in doc.get("meta", [])]
    return [tuple(c(v) for c, v in zip(convs, row, strict=True)) for row in doc.get("data", [])]


# ---- the adapters ---------------------------------------------------------------------------------


_SESSION_LOCK = threading.RLock()


class ChdbClickHouse:
    """One cluster's database in the process's shared chdb session (embedded ClickHouse)."""

    def __init__(self, session: Any, database: str) -> None:
        self.session = session
        self.database = check_ident(database)

    def __repr__(self) -> str:
        return f"ChdbClickHouse(database={self.database!r})"

    def _run(self, sql: str, params: Mapping[str, Any] | None, fmt: str) -> Any:
        bound = {k: param_text(v) for k, v in params.items()} if params else None
        try:
            # chdb keeps bound parameters as session state: concurrent calls would see each other's.
            with _SESSION_LOCK:
                if bound:
                    return self.session.query(sql, fmt, params=bound)
                return self.session.query(sql, fmt)
        except RuntimeError as err:  # chdb raises ChdbError (a RuntimeError) for every engine error
            raise UpstreamError(f"ClickHouse (embedded, {self.database}): {_error_text(err)}") from err

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return convert_rows(self._run(sql, params, "JSONCompact").bytes())

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, params, "CSV")

    def insert_csv(self, table: str, columns: Sequence[str], csv_data: bytes) -> int:
        if not csv_data.strip():
            return 0
        cols = ", ".join(quote_ident(c) for c in columns)
        sql = f"INSERT INTO {ch_table(self.database, table)} ({cols}) FORMAT CSV\n{csv_data.decode()}"
        return int(self._run(sql, None, "CSV").rows_written())

    def close(self) -> None:
        """Nothing to release: the session is shared by the whole process and outlives this."""


class ConnectClickHouse:
    """A ClickHouse server through a clickhouse-connect client: a thin mapping of the port."""

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = check_ident(database)

    def __repr__(self) -> str:
        return f"ConnectClickHouse(database={self.database!r})"

    def _call(self, fn: Callable[[], Any]) -> Any:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            return fn()
        except ClickHouseError as err:
            raise UpstreamError(f"ClickHouse ({self.database}): {_error_text(err)}") from err

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        parameters = dict(params) if params else None
        rows = self._call(lambda: self.client.query(sql, parameters=parameters).result_rows)
        return [tuple(r) for r in rows]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        parameters = dict(params) if params else None
        self._call(lambda: self.client.command(sql, parameters=parameters))

    def insert_csv(self, table: str, columns: Sequence[str], csv_data: bytes) -> int:
        if not csv_data.strip():
            return 0
        names = [check_ident(c) for c in columns]
        target = ch_table(self.database, table)
        summary = self._call(lambda: self.client.raw_insert(target, names, insert_block=csv_data, fmt="CSV"))
        return int(summary.written_rows)

    def close(self) -> None:
        self.client.close()


# ---- production factory -------------------------------------------------------------------------


def _env_value(env: Mapping[str, str], var: str | None, region: Region, default: str) -> str:
    if var is None:
        return default
    if var not in env:
        raise ConfigError(f"region {region.name}", [f"environment variable {var} is not set"])
    return env[var]


def connect_options(region: Region, env: Mapping[str, str]) -> dict[str, Any]:
    """clickhouse-connect's arguments for a region: TLS (`secure`) with its CA file when it names one."""
    options: dict[str, Any] = {
        "host": region.host, "port": region.port, "secure": region.tls, "database": region.database,
        "username": _env_value(env, region.username_env, region, "default"),
        "password": _env_value(env, region.password_env, region, ""),
    }
    if region.tls and region.ca_file:
        options["ca_cert"] = region.ca_file
    return options


def connect_region(region: Region, env: Mapping[str, str]) -> ClickHouse:
    """A ConnectClickHouse for a region with engine "clickhouse" (credentials from `env`).

    Raises ConfigError when a named variable is missing and UpstreamError when the server cannot
    be reached; neither message contains the password.
    """
    if region.engine != "clickhouse":
        raise ConfigError(f"region {region.name}", [f"engine {region.engine!r} is not a ClickHouse server"])
    password = _env_value(env, region.password_env, region, "")
    import clickhouse_connect

    try:
        client = clickhouse_connect.get_client(**connect_options(region, env))
    except Exception as err:
        reason = _error_text(err)
        if password:
            reason = reason.replace(password, "***")
        raise UpstreamError(
            f"cannot connect to ClickHouse region {region.name} ({region.host}:{region.port}): {reason}"
        ) from None  # the original may carry connection details; it is not chained
    return ConnectClickHouse(client, region.database)

