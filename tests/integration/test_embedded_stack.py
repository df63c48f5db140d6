"""The embedded stack owns its servers by what they serve: real processes, SIGKILLed and restarted.

Each stack runs in its own process (chdb allows one data path per process): `HOLD` opens it, prints
what it got, and holds it until SIGINT (a normal stop) or SIGKILL (a crash).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.embedded.processes import ServerProcess, postgres_servers, temporal_servers
from bot.embedded.stack import lock_holder, temporal_binary

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import json, sys, time
from pathlib import Path
from bot.embedded.stack import EmbeddedStack
from bot.errors import ShepherdError
try:
    with EmbeddedStack(Path(sys.argv[1]), temporal=sys.argv[2] == "temporal") as s:
        print(json.dumps({"pg": s.pg_dsn, "temporal": s.temporal_address, "adopted": s.adopted}), flush=True)
        time.sleep(600)
except ShepherdError as err:
    print("refused: " + err.message, flush=True)
    sys.exit(err.exit_code)
except KeyboardInterrupt:
    pass
"""


class Holder:
    def __init__(self, data: Path, temporal: bool = True) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")}
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(data), "temporal" if temporal else "none"],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.state: dict[str, object] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("{"):
                self.state = json.loads(line)
                break
            if line.startswith("refused: "):
                break

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.state and self.proc.poll() is None:  # holding: a normal stop; refused: it exits by itself
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=60)
        assert self.proc.stdout is not None
        self.lines.extend(self.proc.stdout.readlines())
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture()
def data() -> Iterator[Path]:
    """Outside pytest's private (0700) temp dirs: embedded Postgres runs as its own user."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="shepherd-stack-"))
    root.chmod(0o755)
    path = root / "data"
    yield path
    for server in [*temporal_servers(path / "temporal.db"), *postgres_servers(path / "postgres")]:
        os.kill(server.pid, signal.SIGKILL)  # never leave servers behind, whatever failed
    shutil.rmtree(root, ignore_errors=True)


def servers(data: Path) -> tuple[list[ServerProcess], list[ServerProcess]]:
    return temporal_servers(data / "temporal.db"), postgres_servers(data / "postgres")


def wait_until(check, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def test_after_a_sigkill_one_of_each_runs_and_none_after_a_normal_stop(data: Path) -> None:
    first = Holder(data)
    assert first.state, first.output
    state = json.loads((data / "stack.json").read_text())
    assert lock_holder(data).startswith(f"pid {first.proc.pid} (")
    first.kill()
    # The Temporal child dies with its parent; Postgres (daemonized by pg_ctl) is left running.
    assert wait_until(lambda: not servers(data)[0]), "Temporal outlived the SIGKILLed stack"
    (postgres,) = servers(data)[1]
    assert postgres.pid == state["postgres_pid"]

    second = Holder(data)
    try:
        assert second.state, second.output
        assert second.state["adopted"] == {"postgres": postgres.pid}
        temporal, pg = servers(data)
        assert len(temporal) == 1 and [p.pid for p in pg] == [postgres.pid]
        busy = Holder(data)
        assert busy.stop() == 6 and f"pid {second.proc.pid}" in busy.output and "another shepherd" in busy.output
    finally:
        assert second.stop() == 0
    assert servers(data) == ([], []), "a normal stop left servers running (adopted ones included)"
    assert not (data / "stack.json").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_leftover_temporal_is_stopped_and_replaced_on_the_same_db_file(data: Path) -> None:
    data.mkdir(parents=True)
    port = free_port()
    # A leftover as an older Shepherd left it: no death signal, a relative db path read from its cwd.
    leftover = subprocess.Popen([temporal_binary(), "server", "start-dev", "--headless", "--db-filename",
                                 "temporal.db", "--ip", "127.0.0.1", "--port", str(port), "--ui-port",
                                 str(free_port()), "--log-level", "error"], cwd=data, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30)
        holder = Holder(data)
        try:
            assert leftover.wait(timeout=30) is not None  # stopped before the new one started
            assert holder.state["temporal"] != f"127.0.0.1:{port}", holder.output
            (running,) = servers(data)[0]  # exactly one server on the db file: the new one
            assert running.pid != leftover.pid
        finally:
            assert holder.stop() == 0
        assert servers(data) == ([], [])
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


def test_no_second_temporal_on_a_db_file_another_process_holds(data: Path) -> None:
    data.mkdir(parents=True)
    sqlite = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]);"
                               " c.execute('create table if not exists t (x)'); print('open', flush=True);"
                               " time.sleep(600)", str(data / "temporal.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert sqlite.stdout is not None and sqlite.stdout.readline().strip() == "open"
        refused = Holder(data)
        assert refused.stop() == 6, refused.output
        assert f"in use by pid {sqlite.pid}" in refused.output and "second Temporal" in refused.output
        assert servers(data) == ([], [])  # nothing started, and Postgres stopped again
    finally:
        sqlite.kill()
        sqlite.wait()


def test_a_pid_now_used_by_another_process_is_not_taken_for_a_server(data: Path) -> None:
    holder = Holder(data, temporal=False)
    assert holder.state, holder.output
    assert holder.stop() == 0
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        # postmaster.pid left by a crash, naming a pid that now runs something else
        (data / "postgres" / "postmaster.pid").write_text(f"{bystander.pid}\n{data / 'postgres'}\n")
        again = Holder(data, temporal=False)
        try:
            assert again.state and again.state["adopted"] == {}, again.output
            assert len(servers(data)[1]) == 1
        finally:
            assert again.stop() == 0
        assert bystander.poll() is None  # left alone
        assert servers(data) == ([], [])
    finally:
        bystander.kill()
        bystander.wait()
