"""`bench/ack.py --socket-mode`: the same ack load over Socket Mode, and a purge request's fan-out to 20 approvers.

A second `shepherd serve`, now `--socket-mode`, on the same data directory and with the same commands
and concurrency as the HTTP run: the stand-in delivers each slash command as an envelope on the
WebSocket the app opened through apps.connections.open, and the ack is the app's acknowledgement.
Then alice asks for a purge with twenty approvers listed: the channel copy must be posted before any
direct message, and the twenty direct messages must keep to Slack's limits (chat.postMessage about one
per second per channel; conversations.open Tier 3, 50 a minute) with no 429.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bot.standins.slack.emulator import SlackEmulator

APP_TOKEN = "xapp-bench"
APPROVERS = [f"U_AP{i:02d}" for i in range(1, 21)]
RANGE = "--from 2026-01-03 --to 2026-01-09"  # in the demo dataset


def fanout_config(data: Path) -> Path:
    """The demo config the HTTP run wrote, with twenty approvers."""
    config = yaml.safe_load((data / "shepherd.yml").read_text())
    config["access"] = {**config.get("access", {}), "approvers": APPROVERS, "operators": ["U_ALICE"]}
    path = data / "fanout.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def quiet(emu: SlackEmulator, seconds: float = 3.0, limit: float = 600.0) -> None:
    """Wait until the app has made no Web API call for `seconds`: the load's background work (plans posted
    after their acks) is done, so the fan-out is measured alone."""
    deadline = time.monotonic() + limit
    seen, since = len(emu.calls), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < seconds:
        await asyncio.sleep(0.2)
        if len(emu.calls) != seen:
            seen, since = len(emu.calls), time.monotonic()


async def fanout(emu: SlackEmulator) -> dict[str, Any]:
    await quiet(emu)
    began = time.time()
    delivery = await emu.slash("U_ALICE", "C_OPS", "/purge", f"oportun --types 1-3 {RANGE}")
    assert delivery.status == 200, delivery
    request = await emu.wait_for(lambda: next((m for m in emu.messages("C_OPS") if "Purge request" in m.text), None),
                                 timeout=120)
    await emu.wait_for(lambda: all(any(request.text.split(":")[0] in m.text for m in emu.dm(u)) for u in APPROVERS),
                       timeout=120)
    posts = [c for c in emu.calls if c.method == "chat.postMessage" and c.at >= began and c.ok
             and (c.args.get("channel") == "C_OPS" and not c.args.get("thread_ts")
                  or str(c.args.get("channel", "")).startswith("D"))]  # the request and its copies
    channel_post = next(c.at for c in posts if c.args.get("channel") == "C_OPS")
    dm_posts = [c for c in posts if str(c.args.get("channel", "")).startswith("D")]
    opens = sorted(c.at for c in emu.calls if c.method == "conversations.open" and c.at >= began)
    per_channel_second = Counter((c.args["channel"], int(c.at)) for c in posts)
    return {
        "fanout_approvers": len(APPROVERS), "fanout_dms": len(dm_posts),
        "fanout_channel_copy_first": all(c.at >= channel_post for c in dm_posts),
        "fanout_seconds": round(max(c.at for c in dm_posts) - channel_post, 3),
        "fanout_max_posts_per_channel_per_s": max(per_channel_second.values()),
        "fanout_conversations_open_per_min_peak": max(sum(1 for t in opens if s <= t < s + 60) for s in opens),
        "fanout_429s": sum(1 for c in emu.calls if c.http_status == 429 and c.at >= began),
    }


def measure(opts: Any, data: Path, http_p99_ms: float, load: Any, percentile: Any, secret: str,
            token: str) -> dict[str, Any]:
    """Serve again in Socket Mode; the same load; the fan-out. The keys for ack.py's last JSON line."""
    root = Path(__file__).resolve().parents[1]
    with SlackEmulator(signing_secret=secret, bot_token=token, app_token=APP_TOKEN, socket_mode=True) as emu:
        for user in ("U_ALICE", *APPROVERS):
            emu.add_user(user, user.lower().removeprefix("u_"))
        emu.add_channel("C_OPS", "ops", members=["U_ALICE", *APPROVERS])
        env = {**os.environ, "SHEPHERD_SLACK_BOT_TOKEN": token, "SHEPHERD_SLACK_SIGNING_SECRET": secret,
               "SHEPHERD_SLACK_API_URL": emu.api_url, "SHEPHERD_SLACK_APP_TOKEN": APP_TOKEN,
               "SHEPHERD_CONFIG_PATH": str(fanout_config(data))}
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "serve", "--socket-mode", "--data-dir",
                                 str(data)], cwd=root, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line.rstrip(), flush=True)
                if re.search(r"connected to Slack in Socket Mode", line):
                    break
            else:
                raise SystemExit(f"shepherd serve --socket-mode exited with {proc.wait()} before connecting")
            asyncio.run(emu.wait_connected())
            asyncio.run(load(emu, 50, 10))  # warm-up, as over HTTP
            latencies, errors = asyncio.run(load(emu, opts.requests, opts.concurrency))
            spread = asyncio.run(fanout(emu))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    p99 = percentile(latencies, 99)
    print(f"socket mode: ack p50 {percentile(latencies, 50):.1f} ms, p99 {p99:.1f} ms, {errors} errors; "
          f"fan-out: {spread['fanout_dms']} DMs in {spread['fanout_seconds']} s after the channel copy")
    return {"socket_ack_p50_ms": round(percentile(latencies, 50), 1), "socket_ack_p99_ms": round(p99, 1),
            "socket_errors": errors, "socket_vs_http_ack_p99": round(p99 / http_p99_ms, 3),
            "target_socket_vs_http_ack_p99": 1.2, **spread}
