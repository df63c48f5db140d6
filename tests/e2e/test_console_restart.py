"""`shepherd dev` killed with SIGKILL and started again on the same data: the console still shows the job's
status message, the monitor goes on editing it and its thread takes replies (no `message_not_found`);
`--reset` empties the stand-in with the rest of the data."""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.serve_proc import ROOT, clean_env, new_data_dir, servers, shepherd

SCALE = "0.0005"


def dev_until(data: Path, script: Path, marker: str, timeout: float = 300) -> str:
    """Run `shepherd dev --script` until its output shows `marker`, then SIGKILL it; its output."""
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "--data-dir", str(data), "dev", "--scale", SCALE,
                             "--script", str(script)], cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while marker not in "".join(lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    return "".join(lines)


def test_a_killed_dev_restarted_on_its_data_keeps_editing_the_status_message() -> None:
    data = new_data_dir()
    try:
        first = data.parent / "first.txt"
        at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        first.write_text(f"/backfill hilton --window 5d --at {at}\nwait until waiting\nwait 600\n")
        out = dev_until(data, first, "> wait 600")
        job = re.search(r"Backfill (b-[0-9a-f]{6})", out)
        status_ts = re.search(r"↳ in thread (\d+\.\d+)", out)
        assert job and status_ts, out[-3000:]

        second = data.parent / "second.txt"
        second.write_text(f"messages 3\nexpect Backfill {job[1]}\n/backfill cancel {job[1]}\nclick 1\n"
                          "wait until cancel requested\nopen last\nexpect cancel requested by @alice\n"
                          f"wait until {job[1]}:\n")
        again = shepherd(data, "dev", "--script", str(second))
        after = again.stdout
        assert again.returncode == 0, after[-3000:] + again.stderr[-3000:]
        assert "demo reused" in after
        # The status message from before the kill, shown and still edited in place; its thread takes the reply.
        assert f"{status_ts[1]} (edited)" in after and f"✎ {status_ts[1]} updated" in after
        assert "message_not_found" not in after + again.stderr
        assert "thread_not_found" not in after + again.stderr

        reset = shepherd(data, "dev", "--reset", "--ready-exit")
        assert reset.returncode == 0, reset.stderr
        with sqlite3.connect(data / "slack-standin.sqlite") as db:
            assert db.execute("select count(*) from messages").fetchone() == (0,)
        assert servers(data) == ([], [])
    finally:
        shutil.rmtree(data.parent, ignore_errors=True)
