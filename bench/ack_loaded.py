"""`bench/ack.py --loaded`: the same ack load while the same serve process is busy.

Before the load, twenty backfill jobs are started (`--at` tomorrow: their workflows wait, and the monitor,
ticking every second, reads each one's progress and edits its status message every tick). During the
load, `/purge plan all` and `/verify all` are sent again and again, each waiting for the previous
round's two posts. The load generator (and the stand-in) run in the bench process, serve in its own.
The bare operations are timed first, alone: one `/purge plan all` and one `/verify all`, from the
slash command to its post. Each kind has its own channel (the load in #ops, the plans and verifications in
#busy, the jobs in #jobs), so that the outbox's pace of about one post a second per channel does not make
one kind wait for the other's posts.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.embedded.demo import DemoSpec, demo_config
from bot.standins.slack.emulator import SlackEmulator

JOBS = 20
BUSY, JOBS_CHANNEL = "C_BUSY", "C_JOBS"
HEAVY = [("/purge", "plan all", "Purge plan"), ("/verify", "all", "Verification")]


def loaded_config(data: Path) -> Path:
    """The demo config with the monitor ticking every second (beside the data directory)."""
    raw = demo_config(DemoSpec())
    raw["monitor"] = {**raw.get("monitor", {}), "interval_s": 1.0}
    raw["access"]["allowed_channels"] = [*raw["access"]["allowed_channels"], BUSY, JOBS_CHANNEL]
    path = data.parent / f"{data.name}-loaded.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def customers() -> list[str]:
    return [c["name"] for c in demo_config(DemoSpec())["customers"]["explicit"]][:JOBS]


def add_channels(emu: SlackEmulator) -> None:
    for channel in (BUSY, JOBS_CHANNEL):
        emu.add_channel(channel, channel.lower().removeprefix("c_"), members=["U_ALICE"])


async def heavy_once(emu: SlackEmulator, command: str, text: str, posted: str, timeout: float = 300) -> float:
    """One heavy command, from the slash command to its post in the channel: seconds."""
    channel = BUSY
    before = len(emu.messages(channel))
    began = time.monotonic()
    delivery = await emu.slash("U_ALICE", channel, command, text)
    assert delivery.status == 200, delivery
    await emu.wait_for(lambda: any(posted in m.text for m in emu.messages(channel)[before:]), timeout=timeout)
    return time.monotonic() - began


async def start_jobs(emu: SlackEmulator) -> None:
    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    channel = JOBS_CHANNEL
    before = len(emu.messages(channel))
    for name in customers():
        delivery = await emu.slash("U_ALICE", channel, "/backfill", f"{name} --window 10d --at {at}")
        assert delivery.status == 200, delivery
    await emu.wait_for(lambda: sum("waiting" in m.text for m in emu.messages(channel)[before:]) >= JOBS
                       or None, timeout=300)


async def measure(emu: SlackEmulator, load: Any, total: int, concurrency: int) -> dict[str, Any]:
    add_channels(emu)
    bare = {posted: await heavy_once(emu, command, text, posted) for command, text, posted in HEAVY}
    await start_jobs(emu)
    stop = asyncio.Event()
    rounds: list[dict[str, float]] = []

    async def busy() -> None:
        while not stop.is_set():
            times = await asyncio.gather(*(heavy_once(emu, c, t, p) for c, t, p in HEAVY))
            rounds.append(dict(zip([p for _, _, p in HEAVY], times, strict=True)))

    background = asyncio.create_task(busy())
    await asyncio.sleep(0.5)  # the first plan and verification are under way
    latencies, errors = await load(emu, total, concurrency)
    stop.set()
    await background
    return {"latencies": latencies, "errors": errors, "heavy_rounds": len(rounds),
            "bare_purge_plan_all_s": round(bare["Purge plan"], 2), "bare_verify_all_s": round(bare["Verification"], 2),
            "loaded_purge_plan_all_s": round(max(r["Purge plan"] for r in rounds), 2) if rounds else None,
            "loaded_verify_all_s": round(max(r["Verification"] for r in rounds), 2) if rounds else None}
