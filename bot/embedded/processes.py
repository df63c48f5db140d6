"""The server processes of a data directory, found by what they serve, never by a pid alone.

A pid written in a file may have been reused by an unrelated process since; so a Postgres server is
one whose command line names this data directory's pgdata (`postgres -D PGDATA`), and a Temporal dev
server one whose command line names this directory's db file (`temporal server start-dev
--db-filename FILE`, a relative path read against the process's working directory).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    cmdline: tuple[str, ...]
    address: str | None = None  # host:port it serves (Temporal)

    def describe(self) -> str:
        return describe(self.pid, self.cmdline)


def describe(pid: int, cmdline: Iterable[str] = ()) -> str:
    words = " ".join(cmdline)
    return f"pid {pid} ({words[:160]})" if words else f"pid {pid}"


def _option(cmd: list[str], *names: str) -> str | None:
    for i, arg in enumerate(cmd):
        for name in names:
            if arg == name and i + 1 < len(cmd):
                return cmd[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _same_path(arg: str, proc: psutil.Process, target: Path) -> bool:
    path = Path(arg)
    if not path.is_absolute():
        try:
            path = Path(proc.cwd()) / path
        except (psutil.Error, OSError):
            return False
    try:
        return path.resolve() == target.resolve()
    except OSError:
        return False


def _processes() -> Iterable[tuple[psutil.Process, list[str]]]:
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if cmd and proc.pid != os.getpid():
            yield proc, list(cmd)


def temporal_servers(db_file: Path) -> list[ServerProcess]:
    """Temporal dev servers running on `db_file`."""
    found = []
    for proc, cmd in _processes():
        if "start-dev" not in cmd or "temporal" not in Path(cmd[0]).name:
            continue
        db = _option(cmd, "--db-filename", "-f")
        if db is None or not _same_path(db, proc, db_file):
            continue
        host = _option(cmd, "--ip") or "localhost"
        port = _option(cmd, "--port", "-p") or "7233"
        found.append(ServerProcess(proc.pid, tuple(cmd), f"{host}:{port}"))
    return found


def postgres_servers(pgdata: Path) -> list[ServerProcess]:
    """Postgres postmasters serving `pgdata` (its backends name no data directory and are not listed)."""
    found = []
    for proc, cmd in _processes():
        if Path(cmd[0]).name != "postgres":
            continue
        data = _option(cmd, "-D")
        if data is not None and _same_path(data, proc, pgdata):
            found.append(ServerProcess(proc.pid, tuple(cmd)))
    return found


def holders(paths: Iterable[Path], exclude: Iterable[int] = ()) -> list[ServerProcess]:
    """Processes (other than this one and `exclude`) holding any of `paths` open."""
    wanted = {str(p.resolve()) for p in paths}
    skip = {os.getpid(), *exclude}
    found = []
    for proc, cmd in _processes():
        if proc.pid in skip:
            continue
        try:
            opened = {f.path for f in proc.open_files()}
        except (psutil.Error, OSError):
            continue
        if opened & wanted:
            found.append(ServerProcess(proc.pid, tuple(cmd)))
    return found


def is_same(server: ServerProcess) -> bool:
    """Whether `server`'s pid still runs the command line it was found with."""
    try:
        proc = psutil.Process(server.pid)
        return tuple(proc.cmdline()) == server.cmdline and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop(server: ServerProcess, timeout: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True once it is gone. A pid that now runs something
    else is left alone (and counts as gone)."""
    if not is_same(server):
        return True
    try:
        proc = psutil.Process(server.pid)
        proc.terminate()
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            proc.kill()
            proc.wait(5)
    except psutil.Error:
        pass
    return not is_same(server)


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to SIGTERM the child when this process dies (even by SIGKILL).

    Linux ties the signal to the thread that forked, so it is only used from the main thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
