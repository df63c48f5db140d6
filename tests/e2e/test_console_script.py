"""`shepherd dev --script`: the seed week typed into the console, on the demo data, in a real process."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from tests.integration.test_plan_cli import SCALE, shepherd

ROOT = Path(__file__).resolve().parents[2]


def test_seed_week_script_runs_plan_backfill_and_approved_purge() -> None:
    data = Path(tempfile.mkdtemp(prefix="shepherd-console-"))
    data.chmod(0o755)
    try:
        done = shepherd(data / "stack", "dev", "--scale", SCALE, "--script",
                        str(ROOT / "scripts" / "console" / "seed-week.txt"), timeout=600)
        out = done.stdout
        assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
        assert "Backfill plan b-" in out and "41 windows" in out  # hilton/marriott/spirit 11 each, united-east 8
        assert re.search(r"Backfill b-[0-9a-f]{6}", out)
        assert "you requested this purge" in out and "is not an approver" in out
        assert re.search(r"Purge p-[0-9a-f]{6} started", out)
        # A failing line stops the script with its line number and exit 1.
        bad = data / "bad.txt"
        bad.write_text("/shepherd help\n/backfill plan nobody-such\n/shepherd jobs\n")
        failed = shepherd(data / "stack", "dev", "--script", str(bad), timeout=300)
        assert failed.returncode == 1
        assert "bad.txt:2: failed: /backfill plan nobody-such" in failed.stdout
        assert "> /shepherd jobs" not in failed.stdout
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_dev_over_socket_mode_runs_the_console_through_envelopes() -> None:
    data = Path(tempfile.mkdtemp(prefix="shepherd-console-sm-"))
    data.chmod(0o755)
    try:
        done = shepherd(data / "stack", "dev", "--scale", SCALE, "--socket-mode", "--script",
                        str(ROOT / "scripts" / "console" / "socket-mode.txt"), timeout=600)
        out = done.stdout
        assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
        assert "connected in Socket Mode" in out and "answers at http" not in out
        assert "you requested this purge" in out
        assert re.search(r"Purge p-[0-9a-f]{6} started", out)
    finally:
        shutil.rmtree(data, ignore_errors=True)
