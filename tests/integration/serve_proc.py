"""`shepherd serve --http` on the embedded stack as a real process, driven by the Slack stand-in.

The stand-in runs in the test process; serve gets its api_url, token and signing secret through
SHEPHERD_* variables, like any deployment. Helpers read the stack's Postgres (its DSN is in
stack.json) and, between runs, its chdb data (a separate process: chdb allows one data path per
process, and only while no serve holds it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bot.embedded.demo import DemoSpec, demo_config
from bot.embedded.processes import ServerProcess, postgres_servers, temporal_servers

ROOT = Path(__file__).resolve().parents[2]
SECRET, TOKEN = "restart-signing-secret", "xoxb-restart-token"
USERS = {"U_ALICE": "alice", "U_BOB": "bob", "U_CAROL": "carol", "U_DAVE": "dave"}
KEPT = ("SHEPHERD_SLACK_CONTRACT", "SHEPHERD_LINEAR_SCHEMA")  # where the stand-ins' contracts are, if set


def clean_env() -> dict[str, str]:
    """This process's environment without SHEPHERD_* settings (the stand-ins' contract paths kept)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_") or k in KEPT}


def new_data_dir() -> Path:
    """Outside pytest's private (0700) temp dirs: embedded Postgres runs as its own user."""
    root = Path(tempfile.mkdtemp(prefix="shepherd-serve-"))
    root.chmod(0o755)
    return root / "data"


def write_config(data: Path, spec: DemoSpec, **overrides: dict[str, Any]) -> Path:
    """The demo config for `spec` with sections overridden (monitor pace, backfill pacing...)."""
    raw = demo_config(spec)
    for section, values in overrides.items():
        raw[section] = {**raw.get(section, {}), **values}
    path = data.parent / "shepherd.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def standin() -> Any:
    from bot.standins.slack.emulator import SlackEmulator

    emu = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN).start()
    for uid, name in USERS.items():
        emu.add_user(uid, name)
    emu.add_channel("C_OPS", "ops", members=USERS)
    return emu


class Serve:
    """One `shepherd serve --http` process; its output is collected in `lines`."""

    def __init__(self, data: Path, emu: Any, config: Path | None, *args: str, token: str = TOKEN,
                 env: dict[str, str] | None = None) -> None:
        extra = env or {}
        env = clean_env()
        env.update(SHEPHERD_SLACK_BOT_TOKEN=token, SHEPHERD_SLACK_SIGNING_SECRET=SECRET,
                   SHEPHERD_SLACK_API_URL=emu.api_url, SHEPHERD_METRICS_PORT="0", **extra)
        if config is not None:
            env["SHEPHERD_CONFIG_PATH"] = str(config)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "serve", "--http", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(data), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: list[str] = []
        self.url: str | None = None
        self.ops_url: str | None = None  # /metrics, /healthz, /readyz
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if found := re.search(r"listening on (http://\S+)", line):
                self.url = found.group(1)
            if found := re.search(r"/readyz on http://[^:]+:(\d+)", line):
                self.ops_url = f"http://127.0.0.1:{found.group(1)}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def ready(self, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while self.url is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start (exit {self.proc.poll()}):\n{self.output[-4000:]}")
            time.sleep(0.1)
        return self.url

    def exited(self, timeout: float = 120) -> int:
        """Wait for it to exit by itself."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=120)
        self._reader.join(timeout=10)
        return code


def servers(data: Path) -> tuple[list[ServerProcess], list[ServerProcess]]:
    return temporal_servers(data / "temporal.db"), postgres_servers(data / "postgres")


def kill_servers(data: Path) -> None:
    for server in [*servers(data)[0], *servers(data)[1]]:
        os.kill(server.pid, signal.SIGKILL)


def pg(data: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    dsn = json.loads((data / "stack.json").read_text())["postgres"]
    with psycopg.connect(dsn) as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]


COUNTS = """
import json, sys
from pathlib import Path
from bot.adapters.chdb_session import shared_session
from bot.embedded.demo import CLUSTERS, ch_database
session = shared_session(Path(sys.argv[1]) / "clickhouse")
out = {}
for cluster in CLUSTERS:
    db = ch_database(cluster)
    cards = session.query(f"SELECT customer_id, toString(day), countIf(scorecard_type > 3),"
                          f" countIf(scorecard_type <= 3) FROM {db}.scorecards GROUP BY 1, 2", "JSONCompact").bytes()
    scores = session.query(f"SELECT customer_id, toString(day), count() FROM {db}.scores GROUP BY 1, 2",
                           "JSONCompact").bytes()
    for c, d, ok, appeal in json.loads(cards)["data"]:
        out.setdefault(c, {})[d] = [int(ok), int(appeal), 0]
    for c, d, n in json.loads(scores)["data"]:
        out.setdefault(c, {}).setdefault(d, [0, 0, 0])[2] = int(n)
print(json.dumps(out))
"""


def ch_counts(data: Path) -> dict[str, dict[str, list[int]]]:
    """{customer: {day: [non-appeal scorecards, appeal scorecards, scores]}} read from the chdb files."""
    done = subprocess.run([sys.executable, "-c", COUNTS, str(data)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def shepherd(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    return subprocess.run([sys.executable, "-m", "bot.cli.main", "--data-dir", str(data), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
