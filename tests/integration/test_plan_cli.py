"""`shepherd plan` and `shepherd dev` as a person runs them: real processes on the embedded stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCALE = "0.002"
SEED_WEEK = "hilton,marriott,spirit,united-east,care-oregon"


def shepherd(data_dir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "stack"
    done = shepherd(path, "dev", "--scale", SCALE, "--ready-exit")
    assert done.returncode == 0, done.stderr
    assert "ready" in done.stdout
    return path


def test_seed_week_backfill_plan(data_dir: Path) -> None:
    done = shepherd(data_dir, "plan", "backfill", SEED_WEEK, "--parallel", "8", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    windows = {c["customer"]: c["window_days"] for c in plan["customers"]}
    assert windows == {"hilton": 5, "marriott": 5, "spirit": 5, "united-east": 7, "care-oregon": 10}
    hilton = next(c for c in plan["customers"] if c["customer"] == "hilton")
    assert len(hilton["windows"]) == 11
    assert hilton["windows"][0]["start"] == "2026-01-03" and hilton["windows"][-1]["end"] == "2026-02-22"
    united = next(c for c in plan["customers"] if c["customer"] == "united-east")
    assert len(united["windows"]) == 8
    assert plan["makespan_hours"][1] < plan["sequential_hours"][1] / 3
    assert plan["lower_bound_hours"][1] <= plan["makespan_hours"][1]


def test_oportun_purge_is_the_fewest_key_range_mutations(data_dir: Path) -> None:
    done = shepherd(data_dir, "plan", "purge", "oportun", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    chunks = [ch for cl in plan["clusters"] for ch in cl["chunks"]]
    # 51 one-day chunks per table before; cut along the sort key: ceil(rows / 4,000) per table and month
    assert plan["mutations"] == plan["mutations_lower_bound"] == len(chunks) == 45
    assert sum(ch["table"] == "scorecards" for ch in chunks) == 5
    assert all(ch["rows"] <= plan["max_rows_per_mutation"] and ch["partition"] in ("202601", "202602")
               for ch in chunks)
    assert chunks[0]["table"] == "scores" and chunks[0]["to_key"] is not None  # a day cut where the cap falls
    assert plan["total_rows"]["scores"] > plan["total_rows"]["scorecards"] > 0
    text = shepherd(data_dir, "plan", "purge", "oportun")
    assert "45 mutation(s) (lower bound 45)" in text.stdout and "2026-01-03..2026-01-04" in text.stdout


def test_human_output_and_chart(data_dir: Path, tmp_path: Path) -> None:
    chart = tmp_path / "plan.png"
    done = shepherd(data_dir, "plan", "backfill", "hilton,care-oregon", "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    assert ">= " in done.stdout and "lower bound" in done.stdout and "hilton" in done.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "backfill", "hiltonn"], "did you mean hilton"),
        (["plan", "purge", "oportun", "--clusters", "mars"], "unknown cluster mars"),
        (["plan", "backfill", "hilton", "--from", "2026-02-10", "--to", "2026-02-01"], "after"),
        (["plan", "backfill", "hilton", "--from", "2026-02-30"], "not a real calendar date"),
        (["plan", "backfill", "hilton", "--window", "0d"], "at least 1d"),
        (["plan", "backfill", "hilton", "--window", "-3d"], "--window"),
        (["plan", "backfill", "hilton", "--window", "week"], "--window"),
        (["plan", "backfill", "hilton", "--parallel", "0"], "at least 1"),
        (["plan", "backfill", "hilton", "--parallel", "99"], "at most"),
        (["plan", "purge", "oportun", "--types", "3-1"], "--types"),
        (["plan", "purge", "oportun", "--max-rows", "-5"], "--max-rows"),
        (["plan", "frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_clear_line_and_starts_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    fresh = tmp_path / "untouched"
    done = shepherd(fresh, *args, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not fresh.exists()  # nothing started, nothing written


def test_second_process_is_refused_while_dev_runs(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")}
    dev = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "--data-dir", str(data_dir), "dev"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        assert dev.stdout is not None
        deadline = time.monotonic() + 120
        for line in dev.stdout:
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        state = json.loads((data_dir / "stack.json").read_text())
        children = [state["postgres_pid"], state["temporal_pid"]]
        assert all(pid_alive(p) for p in children)
        busy = shepherd(data_dir, "plan", "purge", "oportun")
        assert busy.returncode != 0
        assert "another" in busy.stderr and "Traceback" not in busy.stderr
        again = shepherd(data_dir, "dev", "--ready-exit")
        assert again.returncode != 0 and "another" in again.stderr
    finally:
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=60) == 0
    assert not any(pid_alive(p) for p in children), "Ctrl-C left Postgres or Temporal running"
    assert not (data_dir / "stack.json").exists()
    # after a clean stop the data is reused, not reloaded
    done = shepherd(data_dir, "plan", "backfill", "hilton", "--json")
    assert done.returncode == 0, done.stderr
