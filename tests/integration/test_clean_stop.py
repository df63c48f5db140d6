"""`shepherd dev` stops cleanly: --ready-exit, SIGTERM and Ctrl-C (SIGINT) end with exit 0 and no traceback.

(`shepherd serve` and `shepherd worker` stopped by SIGTERM: tests/integration/test_ops_endpoints.py.)
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.serve_proc import ROOT, clean_env, kill_servers, new_data_dir

SCALE = "0.001"


def dev(data: object, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli.main", "dev", "--data-dir", str(data), "--scale", SCALE,
                             *args], cwd=ROOT, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 180) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no {text!r} (exit {proc.poll()}):\n{''.join(seen)[-3000:]}")


@pytest.mark.parametrize("how", ["ready-exit", "SIGTERM", "SIGINT"])
def test_dev_stops_without_a_traceback(how: str) -> None:
    data = new_data_dir()
    proc = None
    try:
        if how == "ready-exit":
            proc = dev(data, "--ready-exit")
        else:
            proc = dev(data)
            wait_for_line(proc, "Press Ctrl-C to stop.")
            proc.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in out + err and "CancelledError" not in out + err, err[-3000:]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        kill_servers(data)
        shutil.rmtree(data.parent, ignore_errors=True)
