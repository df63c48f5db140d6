"""Ack latency of `shepherd serve --http` on the embedded stack: 2,000 signed slash commands over
HTTP, 50 at a time, delivered by the Slack stand-in exactly as Slack delivers them.

The mix: help and job lists (cheap), status of an unknown job and bad input (answered from the
ack or by response_url), and one plan in twenty (a real plan query and a channel post running
behind the ack). Prints ack latency p50/p95/p99, errors, and the serve process's peak RSS.
Last line: one JSON object. Target: p99 under 100 ms, no errors. `--socket-mode` adds the same load over
Socket Mode (`socket_vs_http_ack_p99`, target <= 1.2) and a purge request's fan-out to 20 approvers.
`--loaded` then runs the same load again in the same serve process while it plans `/purge plan all`,
verifies `/verify all` and ticks the monitor over 20 jobs (bench/ack_loaded.py): p99 target 250 ms,
`loaded_vs_idle_ack_p99` the ratio to the idle run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.standins.slack.emulator import SlackEmulator

ROOT = Path(__file__).resolve().parents[1]
SECRET, TOKEN = "bench-secret", "xoxb-bench"
MIX = [("/shepherd", "help"), ("/shepherd", "jobs"), ("/backfill", "status b-000000"), ("/backfill", "plan --bogus"),
       ("/backfill", "help")] * 4
MIX[7] = ("/backfill", "plan care-oregon --window 10d")  # one in twenty plans for real


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(emu: SlackEmulator, total: int, concurrency: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal errors
        command, text = MIX[i % len(MIX)]
        async with gate:
            delivery = await emu.slash("U_ALICE", "C_OPS", command, text)
        latencies.append(delivery.elapsed_s * 1000)
        errors += delivery.status != 200

    await asyncio.gather(*(one(i) for i in range(total)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--data-dir", type=Path, help="embedded stack data (default: a new temp dir)")
    parser.add_argument("--only", help="send only this command text (e.g. '/shepherd help'), to isolate a cost")
    parser.add_argument("--socket-mode", action="store_true",
                        help="then the same load over Socket Mode, and a purge request's fan-out to 20 approvers "
                             "(bench/ack_socket.py)")
    parser.add_argument("--loaded", action="store_true",
                        help="then the same load while serve plans, verifies, monitors 20 jobs (bench/ack_loaded.py)")
    opts = parser.parse_args()
    if opts.only:
        command, _, text = opts.only.partition(" ")
        MIX[:] = [(command, text)]
    data = opts.data_dir or Path(tempfile.mkdtemp(prefix="shepherd-bench-ack-"))
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o755)
    with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN) as emu:
        emu.add_user("U_ALICE", "alice")
        emu.add_channel("C_OPS", "ops", members=["U_ALICE"])
        env = {**os.environ, "SHEPHERD_SLACK_BOT_TOKEN": TOKEN, "SHEPHERD_SLACK_SIGNING_SECRET": SECRET,
               "SHEPHERD_SLACK_API_URL": emu.api_url}
        if opts.loaded:
            from ack_loaded import loaded_config  # bench/ack_loaded.py, beside this file

            env["SHEPHERD_CONFIG_PATH"] = str(loaded_config(data))
        loaded: dict[str, object] = {}
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "serve", "--http", "--host", "127.0.0.1",
                                 "--port", "0", "--data-dir", str(data)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line.rstrip(), flush=True)
                if found := re.search(r"listening on (http://\S+)", line):
                    emu.app_url = found.group(1)
                    break
            else:
                raise SystemExit(f"shepherd serve exited with {proc.wait()} before listening")
            print(f"serve ready in {time.monotonic() - began:.1f} s", flush=True)
            asyncio.run(load(emu, 50, 10))  # warm-up: first plan, first connections
            latencies, errors = asyncio.run(load(emu, opts.requests, opts.concurrency))
            idle_load = os.getloadavg()[0]
            if opts.loaded:
                from ack_loaded import measure as measure_loaded

                loaded = asyncio.run(measure_loaded(emu, load, opts.requests, opts.concurrency))
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    result = {"requests": len(latencies), "concurrency": opts.concurrency, "errors": errors,
              "ack_p50_ms": round(percentile(latencies, 50), 1), "ack_p95_ms": round(percentile(latencies, 95), 1),
              "ack_p99_ms": round(percentile(latencies, 99), 1), "serve_peak_rss_mb": round(rss, 1),
              "target_p99_ms": 100, "load_average_1m": round(idle_load, 2)}
    if opts.loaded:
        busy: list[float] = loaded.pop("latencies")  # type: ignore[assignment]
        p99 = percentile(busy, 99)
        result.update({"loaded_errors": loaded.pop("errors"), "loaded_ack_p50_ms": round(percentile(busy, 50), 1),
                       "loaded_ack_p95_ms": round(percentile(busy, 95), 1), "loaded_ack_p99_ms": round(p99, 1),
                       "loaded_target_p99_ms": 250, **loaded,
                       "loaded_vs_idle_ack_p99": round(p99 / max(result["ack_p99_ms"], 0.001), 2),  # type: ignore[arg-type]
                       "loaded_load_average_1m": round(os.getloadavg()[0], 2)})
        print(f"loaded: ack p50 {result['loaded_ack_p50_ms']} ms, p95 {result['loaded_ack_p95_ms']} ms, "
              f"p99 {result['loaded_ack_p99_ms']} ms, {result['loaded_errors']} errors, "
              f"{result['heavy_rounds']} rounds of /purge plan all + /verify all")
    if opts.socket_mode:
        from ack_socket import measure  # bench/ack_socket.py, beside this file

        result.update(measure(opts, data, result["ack_p99_ms"], load, percentile, SECRET, TOKEN))
    print(f"ack p50 {result['ack_p50_ms']} ms, p95 {result['ack_p95_ms']} ms, p99 {result['ack_p99_ms']} ms, "
          f"{errors} errors, serve peak RSS {result['serve_peak_rss_mb']} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
