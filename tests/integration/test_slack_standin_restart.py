"""The Slack stand-in kept on disk: killed with SIGKILL and started again on the same file, it still has the
channels and messages, so the app edits a status message posted before the restart (not `message_not_found`).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.integration.standin_server import TOKEN

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def standin(state: Path) -> Iterator[WebClient]:
    """A stand-in process on `state`, and Slack's own client pointed at it; SIGKILLed at the end."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.standin_server", str(state)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("api_url "), f"the stand-in did not start: {line!r} (exit {proc.poll()})"
        yield WebClient(token=TOKEN, base_url=line.split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_killed_standin_restarted_on_its_file_keeps_channels_messages_and_threads() -> None:
    folder = Path(tempfile.mkdtemp(prefix="shepherd-standin-"))
    state = folder / "slack-standin.sqlite"
    try:
        with standin(state) as slack:
            status = slack.chat_postMessage(channel="C_OPS", text="Backfill b-1 running 10%")
            reply = slack.chat_postMessage(channel="C_OPS", text="window 1 finished", thread_ts=status["ts"])
            gone = slack.chat_postMessage(channel="C_OPS", text="a message deleted before the restart")
            slack.chat_delete(channel="C_OPS", ts=gone["ts"])
            dm = slack.conversations_open(users="U_ALICE")["channel"]["id"]
            slack.chat_postMessage(channel=dm, text="approve p-1?")
        # killed with SIGKILL at the end of the block: nothing was closed cleanly

        with standin(state) as slack:
            edited = slack.chat_update(channel="C_OPS", ts=status["ts"], text="Backfill b-1 running 60%")
            assert edited["ok"] and edited["text"] == "Backfill b-1 running 60%"
            assert slack.chat_update(channel="C_OPS", ts=reply["ts"], text="window 1 finished (2 h)")["ok"]
            later = slack.chat_postMessage(channel="C_OPS", text="window 2 finished", thread_ts=status["ts"])
            assert float(later["ts"]) > float(reply["ts"])  # a new timestamp never repeats an old one
            assert later["message"]["thread_ts"] == status["ts"]
            link = slack.chat_getPermalink(channel="C_OPS", message_ts=reply["ts"])["permalink"]
            assert f"thread_ts={status['ts']}" in link
            assert slack.conversations_open(users="U_ALICE")["channel"]["id"] == dm
            try:
                slack.chat_update(channel="C_OPS", ts=gone["ts"], text="back?")
                raise AssertionError("a message deleted before the restart came back")
            except SlackApiError as err:
                assert err.response["error"] == "message_not_found"

        with standin(state) as slack:  # the edits made after the first restart are kept too
            root = slack.chat_update(channel="C_OPS", ts=status["ts"], text="Backfill b-1 done")
            assert root["ok"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
