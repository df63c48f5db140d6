"""The outbox and the Slack poster on real Postgres, against the Slack stand-in through slack_sdk."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.postgres import apply_migrations, make_pool
from bot.ops.logs import JsonFormatter
from bot.slack.outbox import Outbox
from bot.slack.poster import SlackPoster
from bot.standins.slack.emulator import SlackEmulator

pytestmark = pytest.mark.integration

SECRET = "test-signing-secret"
TOKEN = "xoxb-poster-test-token"
CHANNELS = ("C_ONE", "C_TWO", "C_THREE")


@pytest.fixture()
def pool(pg_dsn: str) -> Iterator[ConnectionPool]:
    p = make_pool(pg_dsn, min_size=1, max_size=8)
    apply_migrations(p)
    yield p
    p.close()


@pytest.fixture()
def outbox(pool: ConnectionPool) -> Outbox:
    return Outbox(pool)


@pytest.fixture()
def emu() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN).start()
    emulator.add_user("U_ALICE", "alice")
    for i, channel in enumerate(CHANNELS):
        emulator.add_channel(channel, f"ops-{i}")
    yield emulator
    emulator.close()


def poster(outbox: Outbox, emu: SlackEmulator, **kwargs: Any) -> SlackPoster:
    client = AsyncWebClient(token=TOKEN, base_url=emu.api_url, retry_handlers=[])
    settings: dict[str, Any] = {"per_channel_interval_s": 0.02, "base_backoff_s": 0.05, "max_backoff_s": 0.5}
    return SlackPoster(outbox, client, **(settings | kwargs))


async def drain(p: SlackPoster, timeout: float = 20.0) -> float:
    """Run the poster until the outbox has nothing pending; returns the seconds it took."""
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop, poll_s=0.02))
    started = time.monotonic()
    try:
        while await asyncio.to_thread(p.outbox.pending_count) > 0:
            assert time.monotonic() - started < timeout, "the outbox did not drain in time"
            await asyncio.sleep(0.02)
        return time.monotonic() - started
    finally:
        stop.set()
        await task


def texts(emu: SlackEmulator, channel: str) -> list[str]:
    return [m.text for m in emu.messages(channel)]


def posted_ok(emu: SlackEmulator) -> list[Any]:
    return [c for c in emu.calls if c.method == "chat.postMessage" and c.ok]


async def test_every_message_arrives_once_in_order_despite_429_and_500(outbox: Outbox, emu: SlackEmulator) -> None:
    top: dict[str, list[str]] = {c: [] for c in CHANNELS}
    threads: dict[str, list[str]] = {}  # parent text -> reply texts
    for i in range(20):
        for channel in CHANNELS:
            text = f"{channel}-{i:02d}"
            parent = f"{channel}-{i - i % 5:02d}"  # 00, 05, 10, 15 start threads; 01, 02 and 06, 07 ... reply
            if i % 5 in (1, 2):
                await asyncio.to_thread(outbox.enqueue, text, "chat.postMessage", {"text": text},
                                        channel=channel, thread_key=parent)
                threads.setdefault(parent, []).append(text)
            else:
                await asyncio.to_thread(outbox.enqueue, text, "chat.postMessage", {"text": text}, channel=channel)
                top[channel].append(text)
    assert await asyncio.to_thread(outbox.pending_count) == 60
    emu.fault_rate(0.3, statuses=(429, 500), seed=7)

    await drain(poster(outbox, emu), timeout=30)

    statuses = [c.http_status for c in emu.calls if c.method == "chat.postMessage"]
    assert statuses.count(429) >= 3 and statuses.count(500) >= 3  # the faults really happened
    assert len(posted_ok(emu)) == 60
    for channel in CHANNELS:
        assert texts(emu, channel) == top[channel]
        for msg in emu.messages(channel):
            assert [r.text for r in emu.thread(channel, msg.ts)] == threads.get(msg.text, [])
    assert emu.contract_violations == []
    ts = await asyncio.to_thread(outbox.sent_ts, "C_TWO-05")
    assert ts is not None and emu.message("C_TWO", ts).text == "C_TWO-05"


async def test_the_same_key_twice_is_one_message(outbox: Outbox, emu: SlackEmulator) -> None:
    first = await asyncio.to_thread(outbox.enqueue, "job:b-1:done", "chat.postMessage", {"text": "done"},
                                    channel="C_ONE")
    again = await asyncio.to_thread(outbox.enqueue, "job:b-1:done", "chat.postMessage", {"text": "other"},
                                    channel="C_TWO")
    assert first == again
    await drain(poster(outbox, emu))
    assert texts(emu, "C_ONE") == ["done"] and texts(emu, "C_TWO") == []
    # enqueueing a sent key again does not send it again
    await asyncio.to_thread(outbox.enqueue, "job:b-1:done", "chat.postMessage", {"text": "done"}, channel="C_ONE")
    assert await poster(outbox, emu).run_once() == 0
    assert len(posted_ok(emu)) == 1


async def test_edits_by_key_and_ephemerals(outbox: Outbox, emu: SlackEmulator) -> None:
    enqueue = outbox.enqueue
    await asyncio.to_thread(enqueue, "status", "chat.postMessage", {"text": "0%"}, channel="C_ONE")
    for pct in (10, 50, 100):
        await asyncio.to_thread(enqueue, f"status:{pct}", "chat.update", {"ts_key": "status", "text": f"{pct}%"},
                                channel=None)
    await asyncio.to_thread(enqueue, "note", "chat.postEphemeral", {"user": "U_ALICE", "text": "only you"},
                            channel="C_ONE", thread_key="status")
    emu.inject("chat.update", status=500, count=2)
    await drain(poster(outbox, emu))
    ts = await asyncio.to_thread(outbox.sent_ts, "status")
    assert ts is not None
    msg = emu.message("C_ONE", ts)
    assert msg.text == "100%" and msg.edits == 3
    assert [m.text for m in emu.ephemerals("U_ALICE", "C_ONE")] == ["only you"]
    assert emu.contract_violations == []
    with pytest.raises(ValueError, match="never enqueued"):
        enqueue("bad", "chat.update", {"ts_key": "nothing", "text": "x"}, channel=None)


async def test_a_permanent_error_fails_at_once_and_the_rest_still_goes(
    outbox: Outbox, emu: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.poster")
    enqueue = outbox.enqueue
    await asyncio.to_thread(enqueue, "lost", "chat.postMessage", {"text": "to nowhere"}, channel="C_GONE")
    await asyncio.to_thread(enqueue, "lost-reply", "chat.postMessage", {"text": "under it"}, channel="C_GONE",
                            thread_key="lost")
    for i in range(3):
        await asyncio.to_thread(enqueue, f"ok-{i}", "chat.postMessage", {"text": f"ok {i}"}, channel="C_ONE")
    await drain(poster(outbox, emu))

    lost = await asyncio.to_thread(outbox.entry, "lost")
    assert lost is not None and lost.state == "failed" and lost.attempts == 1
    assert lost.last_error is not None and "channel_not_found" in lost.last_error
    reply = await asyncio.to_thread(outbox.entry, "lost-reply")
    assert reply is not None and reply.state == "failed" and reply.attempts == 0  # never sent: its parent failed
    assert len([c for c in emu.calls if c.args.get("channel") == "C_GONE"]) == 1
    assert texts(emu, "C_ONE") == ["ok 0", "ok 1", "ok 2"]
    assert "channel_not_found" in caplog.text and TOKEN not in caplog.text
    as_json = "\n".join(JsonFormatter().format(r) for r in caplog.records)  # SHEPHERD_LOG_FORMAT=json
    assert "channel_not_found" in as_json and TOKEN not in as_json


async def test_each_channel_is_paced_and_channels_go_in_parallel(outbox: Outbox, emu: SlackEmulator) -> None:
    interval = 0.2
    for i in range(5):
        for channel in ("C_ONE", "C_TWO"):
            await asyncio.to_thread(outbox.enqueue, f"{channel}-{i}", "chat.postMessage", {"text": str(i)},
                                    channel=channel)
    took = await drain(poster(outbox, emu, per_channel_interval_s=interval))

    for channel in ("C_ONE", "C_TWO"):
        at = [c.at for c in posted_ok(emu) if c.args["channel"] == channel]
        assert len(at) == 5
        gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
        assert min(gaps) >= interval * 0.9, gaps
        assert at[-1] - at[0] >= 4 * interval * 0.95
        assert texts(emu, channel) == ["0", "1", "2", "3", "4"]
    assert took < 2 * 4 * interval  # the two channels did not wait for each other


async def test_a_poster_crash_loses_nothing(pool: ConnectionPool, outbox: Outbox, emu: SlackEmulator) -> None:
    expected: dict[str, list[str]] = {"C_ONE": [], "C_TWO": []}
    for i in range(15):
        for channel in expected:
            text = f"{channel}-{i:02d}"
            await asyncio.to_thread(outbox.enqueue, text, "chat.postMessage", {"text": text}, channel=channel)
            expected[channel].append(text)
    emu.fault_rate(0.2, statuses=(500,), seed=3)

    stop = asyncio.Event()  # a clean stop mid-run: the calls in flight are finished and recorded
    task = asyncio.create_task(poster(outbox, emu, per_channel_interval_s=0.05).run(stop, poll_s=0.02))
    await emu.wait_for(lambda: len(posted_ok(emu)) >= 6, timeout=10)
    stop.set()
    await task
    task = asyncio.create_task(poster(outbox, emu, per_channel_interval_s=0.05).run(asyncio.Event(), poll_s=0.02))
    await emu.wait_for(lambda: len(posted_ok(emu)) >= 14, timeout=10)
    task.cancel()  # a crash: a call may be cut off after Slack took it, before it was recorded
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(outbox.pending_count) > 0

    await drain(poster(Outbox(pool), emu, per_channel_interval_s=0.05))
    for channel, wanted in expected.items():
        got = texts(emu, channel)
        collapsed = [t for i, t in enumerate(got) if i == 0 or got[i - 1] != t]
        assert collapsed == wanted  # nothing lost, in order
        assert len(got) - len(wanted) <= 1  # at most the call in flight at the crash went twice
