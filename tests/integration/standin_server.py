"""The Slack stand-in alone in its own process, kept in a SQLite file: `python -m ... STATE_FILE`.

Prints `api_url <url>` once it serves, then serves until killed (as `shepherd dev` does for its console).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bot.standins.slack.emulator import SlackEmulator

SECRET, TOKEN = "standin-signing-secret", "xoxb-standin-token"


def main(state: Path) -> None:
    emu = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN, state_path=state).start()
    emu.add_user("U_ALICE", "alice")
    emu.add_channel("C_OPS", "ops", members=["U_ALICE"])
    print(f"api_url {emu.api_url}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
