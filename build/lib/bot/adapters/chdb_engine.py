"""The embedded ClickHouse engine (chdb) the HTTP server answers from: pooled and session-pinned connections.

chdb raises one error type for everything; `EngineError` carries ClickHouse's code and text so the
HTTP layer can report it the way a ClickHouse server does.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# HTTP transport parameters and settings that only steer the HTTP layer: never sent as SET.
_TRANSPORT = frozenset({
    "query", "database", "default_format", "session_id", "session_timeout", "session_check", "query_id",
    "quota_key", "wait_end_of_query", "client_protocol_version", "compress", "decompress", "buffer_size",
    "role", "user", "password", "enable_http_compression", "send_progress_in_http_headers",
    "cancel_http_readonly_queries_on_client_close", "readonly", "add_http_cors_header",
})
_RESULT_VERBS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK", "VALUES"})
_CODE = re.compile(r"Code: (\d+)\.")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LEAD = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()*([A-Za-z]+)", re.S)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.I)
_INSERT_FORMAT = re.compile(rb"^(\s*INSERT\s+INTO\s(?:(?!\bSELECT\b).)*?)\bFORMAT\s+([A-Za-z0-9_]+)", re.I | re.S)
_CONTENT_TYPES = {"Native": "application/octet-stream", "TabSeparated": "text/tab-separated-values; charset=UTF-8",
                  "JSON": "application/json; charset=UTF-8", "JSONCompact": "application/json; charset=UTF-8"}
_MAX_FREE = 8  # idle pooled connections kept open


class EngineError(Exception):
    """An error reported to the client as ClickHouse does: `Code: <n>. DB::Exception: <message>`."""

    def __init__(self, message: str, code: int | None = None, status: int = 500) -> None:
        found = _CODE.match(message)
        self.code = code if code is not None else int(found.group(1)) if found else 1001
        self.text = message if found else f"Code: {self.code}. DB::Exception: {message}"
        self.status = status
        super().__init__(self.text)


@dataclass(eq=False)
class _Conn:
    session: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    database: str = "default"
    settings: dict[str, str] = field(default_factory=dict)  # what this server has SET on it
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    timeout: float = 60.0


@dataclass
class Result:
    body: bytes
    fmt: str | None  # the output format, for statements that produce a result
    summary: dict[str, str]


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except RuntimeError as err:  # chdb raises ChdbError (a RuntimeError) for every engine error
        raise EngineError(str(err).strip()) from None


def _summary(started: float, read: tuple[int, int] = (0, 0), written: tuple[int, int] = (0, 0),
             result_bytes: int = 0) -> dict[str, str]:
    values = {"read_rows": read[0], "read_bytes": read[1], "written_rows": written[0], "written_bytes": written[1],
              "total_rows_to_read": read[0], "result_rows": 0, "result_bytes": result_bytes,
              "elapsed_ns": int((time.monotonic() - started) * 1e9)}
    return {k: str(v) for k, v in values.items()}


class Engine:
    """The embedded engine at `path`: pooled chdb connections and session-pinned ones."""

    def __init__(self, path: Path) -> None:
        from chdb import session as chdb_session

        path.mkdir(parents=True, exist_ok=True)
        self._new = lambda: _Conn(chdb_session.Session(str(path)))
        self._anchor = self._new()  # never closed before shutdown, so the engine stays up
        head = self._anchor.session.query("SELECT version(), timezone()", "TSV").bytes().decode()
        self.version, self.timezone = head.strip().split("\t")
        self._lock = threading.Lock()
        self._free: list[_Conn] = []
        self._sessions: dict[str, _Conn] = {}

    @contextlib.contextmanager
    def connection(self, session_id: str | None, timeout: float) -> Iterator[_Conn]:
        """A connection for one request: the session's own (expiring after `timeout` idle s) or a pooled one."""
        with self._lock:
            now = time.monotonic()
            for sid, c in list(self._sessions.items()):
                if c.users == 0 and now - c.last_used > c.timeout:
                    del self._sessions[sid]
                    c.session.close()
            if session_id:
                conn = self._sessions.get(session_id) or self._sessions.setdefault(session_id, self._new())
                conn.timeout = timeout
            else:
                conn = self._free.pop() if self._free else self._new()
            conn.users += 1
        try:
            with conn.lock:  # a session's requests run one at a time, as on a server
                yield conn
        finally:
            conn.last_used = time.monotonic()
            with self._lock:
                conn.users -= 1
                if not session_id and len(self._free) < _MAX_FREE:
                    self._free.append(conn)
                elif not session_id:
                    conn.session.close()

    def prepare(self, conn: _Conn, database: str, settings: dict[str, str]) -> None:
        """Bring the connection's settings and current database to what the request asks."""
        for name in settings:
            if not _IDENT.match(name):
                raise EngineError(f"Invalid setting name {name!r}", code=115)
        changes = {k: "DEFAULT" for k in conn.settings if k not in settings}
        changes |= {k: "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
                    for k, v in settings.items() if conn.settings.get(k) != v}
        if changes:
            try:
                _call(conn.session.query, "SET " + ", ".join(f"{k} = {v}" for k, v in changes.items()), "TSV")
            except EngineError:  # perhaps applied in part: put each setting it named back to its default
                for name in changes:
                    with contextlib.suppress(RuntimeError):
                        conn.session.query(f"SET {name} = DEFAULT", "TSV")
                conn.settings = {k: v for k, v in conn.settings.items() if k not in changes}
                raise
            conn.settings = dict(settings)
        if database != conn.database:
            _call(conn.session.query, "USE `" + database.replace("`", "\\`") + "`", "TSV")
            conn.database = database

    def execute(self, conn: _Conn, text: bytes, fmt: str, params: dict[str, str]) -> Result:
        started = time.monotonic()
        insert = _INSERT_FORMAT.match(text[:65536])
        if insert:  # INSERT ... FORMAT <fmt> <data>: stream the data into chdb's inserter
            pos = insert.end()
            while pos < len(text) and text[pos] in b" \t\r":
                pos += 1
            pos += text[pos:pos + 1] == b"\n"  # data starts after the first newline (as in ClickHouse)
            inserter = _call(conn.session.send_insert, insert.group(1).decode(), insert.group(2).decode())
            try:
                if pos < len(text):
                    _call(inserter.append, text[pos:])
                done = _call(inserter.finish)
            finally:
                with contextlib.suppress(RuntimeError):
                    inserter.cancel()  # a no-op once finished
            return Result(b"", None, _summary(started, written=(done.rows_written, done.bytes_written)))
        if fmt.lower() in ("dataframe", "arrowtable", "debug"):
            raise EngineError(f"Unknown output format {fmt}", code=73)
        sql = text.decode()
        res = _call(conn.session.query, sql, fmt, params=params or None)
        body = res.bytes()
        found, lead = _TRAILING_FORMAT.search(sql), _LEAD.match(sql)
        produces = bool(found) or bool(lead and lead.group(1).upper() in _RESULT_VERBS)
        summary = _summary(started, (res.rows_read(), res.bytes_read()), (res.rows_written(), res.bytes_written()),
                           len(body))
        return Result(body, (found.group(1) if found else fmt) if produces else None, summary)

    def close(self) -> None:
        with self._lock:
            for c in [*self._free, *self._sessions.values(), self._anchor]:
                c.session.close()
            self._free.clear()
            self._sessions.clear()


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding in ("gzip", "deflate"):
        return gzip.decompress(data) if encoding == "gzip" else zlib.decompress(data)
    if encoding == "lz4":  # clickhouse-connect sends one LZ4 frame per block
        import lz4.frame

        out, rest = [], data
        while rest:
            dec = lz4.frame.LZ4FrameDecompressor()
            out.append(dec.decompress(rest))
            rest = dec.unused_data if dec.eof else b""
        return b"".join(out)
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd  # type: ignore[no-redef]
        return bytes(zstd.decompress(data))
    raise EngineError(f"Unknown Content-Encoding {encoding!r}", code=48, status=400)
